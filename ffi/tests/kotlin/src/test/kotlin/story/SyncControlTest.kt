package story

import guide.Session
import guide.signIn
import java.io.File
import java.util.Collections
import java.util.concurrent.TimeUnit
import javax.crypto.KeyGenerator
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.NewHousehold
import uniffi.doorstep_ffi.SyncCancel
import uniffi.doorstep_ffi.SyncProgress
import uniffi.doorstep_ffi.SyncProgressListener

/** `sync`'s deadline, cancel handle and progress from coroutines, against a real server. */
class SyncControlTest {
    @TempDir
    lateinit var dir: File

    private val keystoreKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    private val station = TestServer.newStation()

    private suspend fun phone(name: String): Session {
        val code = TestServer.newWorkerCode(station, name)
        return signIn(File(dir, name).apply { mkdirs() }, keystoreKey, TestServer.url, code)
    }

    @Test
    fun `a new phone, a spent deadline, a stalled sync cancelled by its handle, then progress to the end`() = runBlocking<Unit> {
        val a = phone("W01")
        repeat(5) {
            a.store.createHousehold(NewHousehold(
                code = "HH-SC000$it", village = "石桥村", address = "石桥村三组", gps = null,
                phones = emptyList(), tags = emptyList(), summary = "独居老人。",
            ))
        }
        assertTrue(a.store.sync(TestServer.url, a.token).complete)
        val b = phone("W02")
        Session.current = null

        // The window is already over: no round trip, nothing applied, "not complete".
        val none = b.store.sync(TestServer.url, b.token, deadlineMs = 0uL)
        assertFalse(none.complete)
        assertEquals(0u, none.roundTrips)
        assertEquals(emptyList(), b.store.householdIds())

        // The request is stuck on the link; the app cancels through the handle.
        val link = StallingLink(TestServer.port)
        link.stalled = true
        val cancel = SyncCancel()
        val stuck = async(Dispatchers.IO) { runCatching { b.store.sync(link.url, b.token, cancel = cancel) } }
        assertTrue(link.heldRequest.await(20, TimeUnit.SECONDS), "the request reached the link")
        cancel.cancel()
        assertIs<DoorstepException.Cancelled>(stuck.await().exceptionOrNull())
        assertTrue(link.heldClosed.await(10, TimeUnit.SECONDS), "the Rust work let go of its connection")
        link.close()
        assertEquals(emptyList(), b.store.householdIds())

        // Progress after every round trip, ending where the report ends.
        val seen = Collections.synchronizedList(mutableListOf<SyncProgress>())
        val report = b.store.sync(TestServer.url, b.token, progress = object : SyncProgressListener {
            override fun onProgress(progress: SyncProgress) {
                seen += progress
            }
        })
        assertTrue(report.complete)
        assertEquals(report.roundTrips.toInt(), seen.size)
        assertEquals(report.bytesDown, seen.last().bytesDown)
        // The five households and the station's own document (it carries the workers' labels).
        assertEquals(6uL, seen.last().documentsReceived)
        assertEquals("W01", b.store.workerLabel(a.store.workerId()))
        assertFalse(seen.last().bootstrapping)
        assertEquals(5, b.store.householdIds().size)
    }
}
