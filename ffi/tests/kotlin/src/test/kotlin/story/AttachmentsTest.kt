package story

import guide.Session
import guide.signIn
import java.io.File
import java.awt.image.BufferedImage
import java.io.ByteArrayOutputStream
import java.security.MessageDigest
import javax.imageio.ImageIO
import javax.crypto.KeyGenerator
import kotlin.random.Random
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.doorstep_ffi.AttachmentKind
import uniffi.doorstep_ffi.AttachmentUploadState
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.NewHousehold
import uniffi.doorstep_ffi.PhotoOptions
import uniffi.doorstep_ffi.RecordKind

/** Issue 20 from Kotlin: a photo taken by the camera app is attached from its file, goes up
 *  after sync, and a colleague's phone fetches it on demand; the station's pinned kinds
 *  (signatures) come down eagerly. */
class AttachmentsTest {
    @TempDir
    lateinit var dir: File

    private val station = TestServer.newStation("附件站")
    private val keystoreKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    private suspend fun phone(name: String): Session {
        val code = TestServer.newWorkerCode(station, name)
        return signIn(File(dir, name).apply { mkdirs() }, keystoreKey, TestServer.url, code)
    }

    private fun sha256(b: ByteArray) = MessageDigest.getInstance("SHA-256").digest(b).joinToString("") { "%02x".format(it) }

    @Test
    fun `a photo file goes up after sync and comes down when a colleague opens it`() = runBlocking {
        val a = phone("甲")
        val b = phone("乙")
        val hh = a.store.createHousehold(NewHousehold("HH-KT0020", "石桥村", "", null, emptyList(), emptyList(), ""))
        val photo = byteArrayOf(0xff.toByte(), 0xd8.toByte()) + Random.nextBytes(200_000)
        val file = File(dir, "IMG_0001.jpg").apply { writeBytes(photo) }
        val att = a.store.addAttachmentFile(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", file.path)
        assertEquals(sha256(photo), att.hash)
        assertEquals(photo.size.toULong(), att.size)
        assertTrue(att.local)
        assertEquals(AttachmentUploadState.Pending, a.store.attachmentUploads().single().state)

        a.store.sync(a.serverUrl, a.token)
        val up = a.store.uploadAttachments(a.serverUrl, a.token)
        assertEquals(1u, up.completed)
        assertEquals(photo.size.toULong(), up.bytesSent)
        assertEquals(AttachmentUploadState.Done, a.store.attachmentUploads().single().state)

        b.store.sync(b.serverUrl, b.token)
        val ref = b.store.attachments(hh).single()
        assertEquals(att.hash, ref.hash)
        assertFalse(ref.local)
        assertNull(b.store.attachmentBytes(hh, ref.hash))
        assertContentEquals(photo, b.store.fetchAttachment(b.serverUrl, b.token, hh, ref.hash))
        assertContentEquals(photo, assertNotNull(b.store.attachmentBytes(hh, ref.hash)))

        // A file that is not there, and one over the limit: clear errors, nothing kept.
        assertFailsWith<DoorstepException.NotFound> {
            a.store.addAttachmentFile(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", File(dir, "gone.jpg").path)
        }
        val big = File(dir, "big.jpg").apply { java.io.RandomAccessFile(this, "rw").use { it.setLength(16L * 1024 * 1024 + 1) } }
        assertFailsWith<DoorstepException.InvalidInput> {
            a.store.addAttachmentFile(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", big.path)
        }
        assertEquals(1, a.store.attachments(hh).size)
    }

    @Test
    fun `the station's pinned signatures come down after sync by default`() = runBlocking {
        val a = phone("丙")
        val b = phone("丁")
        val hh = a.store.createHousehold(NewHousehold("HH-KT0021", "石桥村", "", null, emptyList(), emptyList(), ""))
        val sig = a.store.addAttachment(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.SIGNATURE, "image/png", Random.nextBytes(20_000))
        val photo = a.store.addAttachment(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", Random.nextBytes(30_000))
        a.store.sync(a.serverUrl, a.token)
        a.store.uploadAttachments(a.serverUrl, a.token)

        TestServer.cli("station", "pinned-attachments", "--station", station, "--kinds", "signature")
        b.store.sync(b.serverUrl, b.token)
        assertEquals(listOf(AttachmentKind.SIGNATURE), b.store.pinnedAttachmentKinds())
        val r = b.store.fetchPinnedAttachments(b.serverUrl, b.token)
        assertEquals(1u, r.fetched)
        assertNotNull(b.store.attachmentBytes(hh, sig.hash))
        assertNull(b.store.attachmentBytes(hh, photo.hash))
    }

    private fun jpeg(width: Int, height: Int): ByteArray {
        val img = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
        val r = Random(7)
        for (x in 0 until width) for (y in 0 until height) {
            img.setRGB(x, y, ((x * 255 / width) shl 16) or ((y * 255 / height) shl 8) or r.nextInt(64))
        }
        return ByteArrayOutputStream().also { ImageIO.write(img, "jpg", it) }.toByteArray()
    }

    private fun size(bytes: ByteArray) = ImageIO.read(bytes.inputStream()).let { it.width to it.height }

    @Test
    fun `a photo is scaled at capture and its thumbnail comes down first`() = runBlocking<Unit> {
        val a = phone("戊")
        val b = phone("己")
        val hh = a.store.createHousehold(NewHousehold("HH-KT0022", "石桥村", "", null, emptyList(), emptyList(), ""))
        val options = PhotoOptions(longestSide = 600u, jpegQuality = 70u, thumbnailSide = 128u)
        val att = a.store.addAttachment(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", jpeg(1200, 900), options)
        assertEquals(600 to 450, size(assertNotNull(a.store.attachmentBytes(hh, att.hash))))
        val thumbHash = assertNotNull(att.thumbnailHash)
        a.store.sync(a.serverUrl, a.token)
        assertEquals(2u, a.store.uploadAttachments(a.serverUrl, a.token).completed)

        b.store.sync(b.serverUrl, b.token)
        assertEquals(thumbHash, b.store.attachments(hh).single().thumbnailHash)
        val thumb = assertNotNull(b.store.fetchAttachmentThumbnail(b.serverUrl, b.token, hh, att.hash))
        assertEquals(128 to 96, size(thumb))
        assertNull(b.store.attachmentBytes(hh, att.hash), "the photo waits until it is opened")
        assertFailsWith<DoorstepException.InvalidInput> {
            a.store.addAttachment(hh, RecordKind.HOUSEHOLD, null, AttachmentKind.PHOTO, "image/jpeg", byteArrayOf(0xff.toByte(), 0xd8.toByte(), 1, 2, 3), options)
        }
    }
}
