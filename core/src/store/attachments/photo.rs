//! Photos made smaller at capture (ADR 0032), when the app asks: scaled to a longest side
//! and re-encoded as JPEG, and a thumbnail made to be fetched before the photo. Only JPEG
//! and PNG are decoded (the `image` crate with those two codecs, compiled into the phones'
//! builds only: the server never decodes an image); a photo of another type is kept as it
//! came, without a thumbnail.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::error::{Error, Result};
use crate::model::attachment::PhotoOptions;

/// Largest width or height decoded: past it the photo is refused rather than decoded (a
/// "decompression bomb" of a few KB can claim 100,000 × 100,000 pixels).
const MAX_SIDE: u32 = 16_384;

/// Most memory the decoder may take (a 50-megapixel photo decodes to 150 MB).
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// A photo as it is kept: its bytes and MIME type, and its thumbnail's JPEG bytes.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub bytes: Vec<u8>,
    pub mime: String,
    pub thumbnail: Option<Vec<u8>>,
}

fn decodable(mime: &str) -> bool {
    mime.eq_ignore_ascii_case("image/jpeg") || mime.eq_ignore_ascii_case("image/png")
}

fn undecodable(_: image::ImageError) -> Error {
    Error::InvalidInput("the photo could not be decoded (damaged, or not the type it claims)")
}

/// Whether a JPEG ends with its end-of-image marker (trailing zero padding allowed). The
/// decoder fills what is missing of a JPEG cut short with grey rather than failing; a
/// camera app killed while writing leaves exactly that.
fn whole_jpeg(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xFF, 0xD9])
}

fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| Error::InvalidInput("the photo could not be decoded"))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) && !whole_jpeg(bytes) {
        return Err(Error::InvalidInput(
            "the photo could not be decoded: it is cut short",
        ));
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    // The camera's "rotate when shown" tag: applied, since the EXIF block is not kept.
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // JPEG has no alpha channel: a PNG with one is flattened.
    DynamicImage::ImageRgb8(image.to_rgb8())
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, quality))
        .map_err(|_| Error::InvalidInput("the photo could not be encoded"))?;
    Ok(out)
}

/// What to keep of a photo under `options`: `None` when it is kept as it came (not JPEG or
/// PNG, or nothing asked). A JPEG or PNG that does not decode is refused: better the worker
/// retakes it now than finds it broken later.
pub(crate) fn prepare(
    bytes: &[u8],
    mime: &str,
    options: &PhotoOptions,
) -> Result<Option<Prepared>> {
    options.check()?;
    if !decodable(mime) || (options.longest_side.is_none() && options.thumbnail_side.is_none()) {
        return Ok(None);
    }
    let image = decode(bytes)?;
    let longest = image.width().max(image.height());
    let (bytes, mime) = match options.longest_side {
        Some(side) if longest > side => {
            let scaled = image.resize(side, side, FilterType::Triangle);
            (
                jpeg(&scaled, options.jpeg_quality)?,
                "image/jpeg".to_owned(),
            )
        }
        _ => (bytes.to_vec(), mime.to_owned()),
    };
    let thumbnail = match options.thumbnail_side {
        Some(side) => Some(jpeg(&image.thumbnail(side, side), options.jpeg_quality)?),
        None => None,
    };
    Ok(Some(Prepared {
        bytes,
        mime,
        thumbnail,
    }))
}
