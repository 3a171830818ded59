//! Photos kept smaller at capture, thumbnails first (issue 20, ADR 0032), with real JPEGs
//! and a real server on 127.0.0.1: a photo scaled to the app's longest side is smaller and
//! has those dimensions; its thumbnail goes up as its own blob and a colleague's phone shows
//! it before it fetches the photo; other kinds are kept byte for byte; a damaged JPEG is
//! refused with nothing kept.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use doorstep_core::*;
use doorstep_tests::TestServer;
use image::{ImageFormat, RgbImage};

/// A 1600 × 1200 JPEG that does not compress to nothing (a gradient with noise).
fn camera_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let img = RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 48) as u8;
        image::Rgb([
            (x * 255 / width) as u8 / 2 + n,
            (y * 255 / height) as u8 / 2 + n,
            ((x + y) % 256) as u8 / 2 + n,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 95,
        ))
        .unwrap();
    out
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).unwrap();
    (img.width(), img.height())
}

fn new(kind: AttachmentKind, mime: &str) -> NewAttachment {
    NewAttachment {
        record: EntityRef::Household,
        kind,
        mime: mime.into(),
    }
}

const OPTIONS: PhotoOptions = PhotoOptions {
    longest_side: Some(800),
    jpeg_quality: 70,
    thumbnail_side: Some(160),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaled_photo_and_its_thumbnail_go_up_and_the_thumbnail_comes_down_first() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let hh = a.new_household("HH-PHOTO-1");
    let original = camera_jpeg(1600, 1200);
    let photo = a
        .store
        .add_attachment_with(
            hh,
            &new(AttachmentKind::Photo, "image/jpeg"),
            AttachmentSource::Bytes(&original),
            &OPTIONS,
        )
        .unwrap();
    let kept = a.store.attachment_bytes(hh, photo.hash).unwrap().unwrap();
    assert_eq!(dimensions(&kept), (800, 600), "the longest side is 800");
    assert!(
        kept.len() * 2 < original.len(),
        "{} bytes kept of {}",
        kept.len(),
        original.len()
    );
    assert_eq!(
        (photo.size, photo.mime.as_str()),
        (kept.len() as u64, "image/jpeg")
    );
    let thumb = photo.thumbnail.expect("a thumbnail");
    let thumb_bytes = a.store.attachment_bytes(hh, thumb.hash).unwrap().unwrap();
    assert_eq!(dimensions(&thumb_bytes), (160, 120));
    assert_eq!(thumb.size, thumb_bytes.len() as u64);
    let queue: Vec<BlobHash> = a
        .store
        .attachment_uploads()
        .unwrap()
        .into_iter()
        .map(|u| u.hash)
        .collect();
    assert_eq!(
        queue,
        [thumb.hash, photo.hash],
        "the thumbnail goes up first"
    );

    // The same options on a signature and a photo too small to scale: kept byte for byte.
    let signature = a
        .store
        .add_attachment_with(
            hh,
            &new(AttachmentKind::Signature, "image/jpeg"),
            AttachmentSource::Bytes(&original),
            &OPTIONS,
        )
        .unwrap();
    assert_eq!(signature.hash, BlobHash::of(&original));
    assert_eq!(signature.thumbnail, None);
    let small = camera_jpeg(640, 480);
    let small_photo = a
        .store
        .add_attachment_with(
            hh,
            &new(AttachmentKind::Photo, "image/jpeg"),
            AttachmentSource::Bytes(&small),
            &OPTIONS,
        )
        .unwrap();
    assert_eq!(small_photo.hash, BlobHash::of(&small), "not re-encoded");
    assert!(small_photo.thumbnail.is_some());

    // Up: the photos, the signature and both thumbnails, each its own blob.
    a.sync().await;
    let up = a.transport.upload_attachments(&a.store).await.unwrap();
    assert_eq!((up.completed, up.failed), (5, 0), "{up:?}");

    // Down: the thumbnail first, the photo when it is opened.
    b.sync().await;
    let seen = b.store.attachment_by_hash(hh, photo.hash).unwrap();
    assert_eq!(seen.thumbnail, Some(thumb));
    assert!(!seen.local);
    let got = b
        .transport
        .fetch_attachment_thumbnail(&b.store, hh, photo.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, thumb_bytes);
    assert!(b.store.attachment_bytes(hh, photo.hash).unwrap().is_none());
    assert_eq!(
        b.transport
            .fetch_attachment(&b.store, hh, photo.hash)
            .await
            .unwrap(),
        kept
    );
    assert_eq!(
        b.transport
            .fetch_attachment_thumbnail(&b.store, hh, signature.hash)
            .await
            .unwrap(),
        None
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_photos_and_bad_options_are_refused_with_nothing_kept() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server.device(station, "A01", &server.url()).await;
    let hh = a.new_household("HH-PHOTO-2");
    let photo = new(AttachmentKind::Photo, "image/jpeg");
    let jpeg = camera_jpeg(320, 240);
    // Cut short, as a camera app killed while writing leaves it; and bytes that are no JPEG.
    let cut = &jpeg[..jpeg.len() / 3];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jpg");
    std::fs::write(&path, cut).unwrap();
    for source in [
        AttachmentSource::Bytes(cut),
        AttachmentSource::Bytes(b"not a jpeg at all"),
        AttachmentSource::File(&path),
    ] {
        let e = a
            .store
            .add_attachment_with(hh, &photo, source, &OPTIONS)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert!(e.to_string().contains("decoded"), "{e}");
    }
    for bad in [
        PhotoOptions {
            jpeg_quality: 0,
            ..OPTIONS
        },
        PhotoOptions {
            longest_side: Some(4),
            ..OPTIONS
        },
        PhotoOptions {
            thumbnail_side: Some(1_000_000),
            ..OPTIONS
        },
    ] {
        assert!(matches!(
            a.store
                .add_attachment_with(hh, &photo, AttachmentSource::Bytes(&jpeg), &bad),
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(a.store.attachments(hh).unwrap().is_empty());
    assert!(a.store.attachment_uploads().unwrap().is_empty());
    // A PNG photo is scaled to a JPEG; a photo of a type not decoded (HEIC) is kept as is.
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(
        image::load_from_memory(&camera_jpeg(1000, 500))
            .unwrap()
            .to_rgb8(),
    )
    .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
    .unwrap();
    let scaled = a
        .store
        .add_attachment_with(
            hh,
            &new(AttachmentKind::Photo, "image/png"),
            AttachmentSource::Bytes(&png),
            &OPTIONS,
        )
        .unwrap();
    assert_eq!(scaled.mime, "image/jpeg");
    let kept = a.store.attachment_bytes(hh, scaled.hash).unwrap().unwrap();
    assert_eq!(dimensions(&kept), (800, 400));
    let heic = b"\0\0\0\x18ftypheic not decoded here".to_vec();
    let as_is = a
        .store
        .add_attachment_with(
            hh,
            &new(AttachmentKind::Photo, "image/heic"),
            AttachmentSource::Bytes(&heic),
            &OPTIONS,
        )
        .unwrap();
    assert_eq!((as_is.hash, as_is.thumbnail), (BlobHash::of(&heic), None));
    server.stop().await;
}
