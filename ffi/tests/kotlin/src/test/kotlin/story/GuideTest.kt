package story

import android.content.Context
import android.os.Handler
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import guide.Session
import guide.SyncWorker
import guide.observe
import guide.scheduleSync
import guide.signIn
import guide.storeKey
import guide.surveyExample
import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.util.concurrent.ArrayBlockingQueue
import java.util.concurrent.TimeUnit
import javax.crypto.AEADBadTagException
import javax.crypto.KeyGenerator
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.doorstep_ffi.ChangeEvent
import uniffi.doorstep_ffi.Doorstep
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.NewHousehold
import uniffi.doorstep_ffi.NewPerson
import uniffi.doorstep_ffi.Sex

/** The guide's code (guide/EmbeddingGuide.kt, quoted by docs/embedding.md) does what it says. */
class GuideTest {
    @TempDir
    lateinit var dir: File

    private fun aesKey() = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    @AfterEach
    fun signOut() {
        Session.current = null
    }

    @Test
    fun `the store key is made once and opens only with its Keystore key`() {
        val keystoreKey = aesKey()
        val file = File(dir, "doorstep.key")
        val key = storeKey(keystoreKey, file)
        assertEquals(32, key.size)
        assertContentEquals(key, storeKey(keystoreKey, file))
        assertFalse(key.contentEquals(storeKey(keystoreKey, File(dir, "other.key"))))
        assertFailsWith<AEADBadTagException> { storeKey(aesKey(), file) }
        val store = Doorstep.open(File(dir, "s.db").path, key, "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-0000000000aa", null)
        store.close()
        assertFailsWith<DoorstepException.WrongKey> {
            Doorstep.open(File(dir, "s.db").path, ByteArray(32), "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-0000000000aa", null)
        }
    }

    @Test
    fun `the guide's survey counts one person's answers`() {
        val store = Doorstep.open(File(dir, "survey.db").path, ByteArray(32) { 7 }, "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-0000000000aa", null)
        val h = store.createHousehold(NewHousehold("HH-GD0002", "石桥村", "", null, emptyList(), emptyList(), ""))
        val granny = store.addPerson(h, NewPerson(
            name = "李奶奶", sex = Sex.FEMALE, birthDate = null, idNumber = null,
            relation = "户主", guardian = false, categories = emptyList(), school = null, grade = null,
        ))
        val counts = surveyExample(store, h, granny)
        val living = counts.filter { it.question == "living" }
        assertEquals(listOf("alone" to 1u), living.map { it.option to it.count })
        assertEquals(4L, counts.single { it.question == "mood" }.sum)
        assertTrue(counts.none { it.question == "words" })
        store.close()
    }

    @Test
    fun `the sync worker succeeds, retries offline, and the observer hears on the main thread`() = runBlocking<Unit> {
        val session = signIn(dir, aesKey(), TestServer.url, TestServer.newWorkerCode(TestServer.newStation(), "W09"))
        assertEquals(session, Session.current)
        val heard = ArrayBlockingQueue<Pair<String, ChangeEvent>>(16)
        val subscription = observe(session.store, Handler()) { heard.add(Thread.currentThread().name to it) }
        val h = session.store.createHousehold(NewHousehold("HH-GD0001", "石桥村", "石桥村五组3号", null, emptyList(), emptyList(), ""))
        val (thread, event) = assertNotNull(heard.poll(10, TimeUnit.SECONDS))
        assertEquals("main", thread)
        assertEquals(ChangeEvent.HouseholdChanged(h), event)
        subscription.close()

        assertIs<ListenableWorker.Result.Success>(SyncWorker(Context(), WorkerParameters()).doWork())
        assertEquals(0u, session.store.unsyncedCount())
        // Nobody listens on this port: offline, retry later.
        val closedPort = ServerSocket(0, 0, InetAddress.getLoopbackAddress()).use { it.localPort }
        Session.current = Session(session.store, "http://127.0.0.1:$closedPort", session.token, session.keyFile)
        assertIs<ListenableWorker.Result.Retry>(SyncWorker(Context(), WorkerParameters()).doWork())
        assertTrue(session.store.householdIds().contains(h), "nothing is lost when offline")
        Session.current = null
        assertIs<ListenableWorker.Result.Success>(SyncWorker(Context(), WorkerParameters()).doWork())
    }

    @Test
    fun `sync is scheduled once, on a network`() {
        val ctx = Context()
        scheduleSync(ctx)
        scheduleSync(ctx)
        val request = assertNotNull(WorkManager.getInstance(ctx).enqueued["doorstep-sync"])
        assertEquals(SyncWorker::class, request.worker)
        assertEquals(30, request.intervalMinutes)
        assertEquals(NetworkType.CONNECTED, request.constraints?.requiredNetworkType)
    }
}
