package story

import guide.Session
import guide.SyncWorker
import guide.signIn
import guide.typed
import android.content.Context
import androidx.work.ListenableWorker
import androidx.work.WorkerParameters
import java.io.File
import java.time.LocalDate
import java.util.Collections
import java.util.concurrent.TimeUnit
import javax.crypto.KeyGenerator
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.doorstep_ffi.ChangeEvent
import uniffi.doorstep_ffi.Doorstep
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.NewCard
import uniffi.doorstep_ffi.NewHousehold
import uniffi.doorstep_ffi.NewPerson
import uniffi.doorstep_ffi.NewVisit
import uniffi.doorstep_ffi.Observer
import uniffi.doorstep_ffi.PersonEdit
import uniffi.doorstep_ffi.RecordKind
import uniffi.doorstep_ffi.Section
import uniffi.doorstep_ffi.Sex
import uniffi.doorstep_ffi.SyncState
import uniffi.doorstep_ffi.VisitKind

/** Collects what a store tells its observers. */
class Recorder : Observer {
    val events: MutableList<ChangeEvent> = Collections.synchronizedList(mutableListOf())
    override fun onEvent(event: ChangeEvent) {
        events += event
    }
    fun households(): Set<String> =
        synchronized(events) { events.filterIsInstance<ChangeEvent.HouseholdChanged>().map { it.householdId }.toSet() }
    fun states(): List<SyncState> =
        synchronized(events) { events.filterIsInstance<ChangeEvent.SyncStateChanged>().map { it.state } }
}

/** An `EditText` as far as a TextWatcher sees it: every change reported in UTF-16 units. */
class EditTextLike(private val store: Doorstep, private val household: String, private val visit: String) {
    var text = ""
        private set

    /** Replace `text[start, end)` with `insert`, then report it as onTextChanged would. */
    suspend fun replace(start: Int, end: Int, insert: String) {
        val after = text.substring(0, start) + insert + text.substring(end)
        typed(store, household, visit, after, start, end - start, insert.length)
        text = after
    }

    fun saved(): String =
        store.household(household).visits.single { it.id == visit }.sections.single { it.section == Section.CONCERNS }.text
}

class FieldStoryTest {
    @TempDir
    lateinit var dir: File

    private val today = LocalDate.now().toString()
    private val keystoreKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    private fun household(code: String) = NewHousehold(
        code = code, village = "石桥村", address = "石桥村三组12号", gps = null,
        phones = listOf("13800138000"), tags = listOf("household.dibao"), summary = "祖孙二人生活。",
    )

    private val station = TestServer.newStation()

    private suspend fun phone(name: String): Session {
        val code = TestServer.newWorkerCode(station, name)
        return signIn(File(dir, name).apply { mkdirs() }, keystoreKey, TestServer.url, code)
    }

    @Test
    fun `two workers, one household, a conflict resolved, a card issued, a phone revoked`() = runBlocking<Unit> {
        val a = phone("W01")
        val b = phone("W02")
        Session.current = null
        assertNotEquals(a.store.deviceId(), b.store.deviceId())

        // A records a household, a grandson and a visit, typing as an EditText reports it.
        val h1 = a.store.createHousehold(household("HH-KT0001"))
        val h2 = a.store.createHousehold(household("HH-KT0002"))
        val grandson = a.store.addPerson(h1, NewPerson(
            name = "王晓明", sex = Sex.MALE, birthDate = null, idNumber = null, relation = "孙子",
            guardian = false, categories = listOf("child.unsupported"), school = null, grade = null,
        ))
        val visit = a.store.startVisit(h1, NewVisit(
            kind = VisitKind.HOME, date = today, startedAtMs = System.currentTimeMillis(), gps = null,
            otherWorkerIds = emptyList(), presentPersonIds = listOf(grandson),
        ))
        val field = EditTextLike(a.store, h1, visit)
        field.replace(0, 0, "孩子情绪低落")
        field.replace(2, 2, "𠮷") // 孩子𠮷情绪低落: 𠮷 is two UTF-16 units
        field.replace(4, 4, "很") // right after 𠮷: UTF-16 4 is code point 3
        field.replace(field.text.length, field.text.length, "😢") // an emoji at the end
        field.replace(field.text.length, field.text.length, "，")
        assertEquals("孩子𠮷很情绪低落😢，", field.saved())
        field.replace(2, 4, "") // delete 𠮷 (a backspace removes both units)
        field.replace(field.text.length - 3, field.text.length - 1, "😭") // replace the emoji
        assertEquals("孩子很情绪低落😭，", field.text)
        assertEquals(field.text, field.saved())
        // Half a surrogate pair is refused, and nothing changes.
        val half = assertFailsWith<DoorstepException.InvalidInput> {
            a.store.spliceSectionUtf16(h1, visit, Section.CONCERNS, 8uL, 0uL, "x")
        }
        assertTrue(half.reason.contains("surrogate"), half.reason)
        assertFailsWith<DoorstepException.InvalidInput> {
            a.store.spliceSectionUtf16(h1, visit, Section.CONCERNS, 0uL, 100uL, "")
        }
        assertEquals(field.text, field.saved())
        // Pasted from a Windows document: saved with plain line breaks, not refused.
        field.replace(field.text.length, field.text.length, "\r\n奶奶说：\r\n要去学校。")
        assertEquals("孩子很情绪低落😭，\n奶奶说：\n要去学校。", field.saved())
        // The summary too, at UTF-16 positions after an emoji.
        a.store.spliceSummaryUtf16(h1, 2uL, 0uL, "👵")
        a.store.spliceSummaryUtf16(h1, 4uL, 0uL, "奶奶和")
        assertEquals("祖孙👵奶奶和二人生活。", a.store.household(h1).summary)
        assertEquals(listOf(visit), a.store.search("情绪低落", 10u).map { it.recordId })

        // The station lends A twenty cards; they reach the phone on its next sync.
        assertEquals(null, a.store.nextCardSerial(today))
        val batch = TestServer.cli("cards", "batch", "--station", station, "--prefix", "HG", "--first", "1", "--last", "100")
        TestServer.cli("cards", "lease", "--station", station, "--batch", batch,
            "--device", a.store.deviceId(), "--first", "1", "--last", "20")
        a.store.sync(TestServer.url, a.token)
        val serial = assertNotNull(a.store.nextCardSerial(today), "the lease matches the enrolled device")
        val card = a.store.issueCard(h1, NewCard(serial, visit, grandson, null, false), today)
        assertEquals(listOf(serial), a.store.cardsOfHousehold(h1).map { it.serial })
        assertEquals(card, a.store.cardsBySerial(serial).single().id)
        assertNotEquals(serial, a.store.nextCardSerial(today))

        // B's phone gets both households.
        val heardByB = Recorder()
        val subB = b.store.subscribe(heardByB)
        a.store.sync(TestServer.url, a.token)
        val first = b.store.sync(TestServer.url, b.token)
        assertTrue(first.pulled + first.snapshots >= 2u, "$first") // a new phone may get snapshots
        assertEquals(setOf(h1, h2), heardByB.households())
        assertIs<SyncState.Syncing>(heardByB.states().first())
        assertIs<SyncState.Idle>(heardByB.states().last())
        assertEquals("王晓明", b.store.household(h1).persons.single().name)

        // Offline, both correct the grandson's name differently.
        a.store.editPerson(h1, grandson, PersonEdit.Name("王小明"))
        b.store.editPerson(h1, grandson, PersonEdit.Name("汪晓明"))
        assertEquals(1u, b.store.unsyncedCount())
        heardByB.events.clear()

        // Both sync at once from coroutines. B's link stalls with its request sent; B's sync
        // is cancelled there, mid-way, and retried.
        val link = StallingLink(TestServer.port)
        link.stalled = true
        val syncA = async(Dispatchers.IO) { a.store.sync(TestServer.url, a.token) }
        val cancelled = launch(Dispatchers.IO) { b.store.sync(link.url, b.token) }
        assertTrue(link.heldRequest.await(20, TimeUnit.SECONDS), "B's request reached the link")
        cancelled.cancel()
        cancelled.join()
        assertTrue(cancelled.isCancelled)
        // The Rust work stopped with the coroutine: it hung up (instead of waiting out its
        // 60 s timeout), B's edit is still unsent and A's not pulled.
        assertTrue(link.heldClosed.await(10, TimeUnit.SECONDS), "the cancelled sync let go of its connection")
        syncA.await()
        assertEquals(1u, b.store.unsyncedCount())
        assertEquals(emptyList(), b.store.conflicts(null))
        assertEquals(emptySet(), heardByB.households())
        // The retry, over the same link (flowing again), while A syncs again.
        link.stalled = false
        val retry = async(Dispatchers.IO) { b.store.sync(link.url, b.token) }
        val againA = async(Dispatchers.IO) { a.store.sync(TestServer.url, a.token) }
        val retried = retry.await()
        againA.await()
        assertTrue(retried.acknowledged >= 1u && retried.pulled + retried.snapshots >= 1u, "$retried")
        assertEquals(0u, b.store.unsyncedCount())
        assertEquals(setOf(h1), heardByB.households(), "only the household that changed")
        a.store.sync(TestServer.url, a.token) // A gets B's edit if the two crossed
        link.close()

        // Both phones see the conflict, with both authors.
        for (s in listOf(a.store, b.store)) {
            val conflict = s.conflicts(null).single()
            assertEquals(h1, conflict.householdId)
            assertEquals(RecordKind.PERSON, conflict.field.record)
            assertEquals(grandson, conflict.field.recordId)
            assertEquals(setOf("王小明", "汪晓明"), conflict.values.map { it.value }.toSet())
            assertEquals(setOf(a.store.workerId(), b.store.workerId()), conflict.values.map { it.provenance.workerId }.toSet())
            assertEquals(setOf(a.store.deviceId(), b.store.deviceId()), conflict.values.map { it.provenance.deviceId }.toSet())
        }

        // B resolves it; A hears about that household only.
        val heardByA = Recorder()
        val subA = a.store.subscribe(heardByA)
        b.store.resolveConflict(h1, b.store.conflicts(h1).single().field, "王小明")
        b.store.sync(TestServer.url, b.token)
        a.store.sync(TestServer.url, a.token)
        assertEquals(setOf(h1), heardByA.households())
        assertEquals(emptyList(), a.store.conflicts(null))
        assertEquals(emptyList(), b.store.conflicts(null))
        assertEquals(a.store.household(h1), b.store.household(h1))
        assertEquals("王小明", b.store.household(h1).persons.single().name)
        assertEquals(listOf(serial), b.store.cardsOfHousehold(h1).map { it.serial })
        assertEquals(field.text.replace("\r\n", "\n"), b.store.household(h1).visits.single().sections.single { it.section == Section.CONCERNS }.text)

        // The station revokes B's phone: the guide's SyncWorker wipes it.
        TestServer.cli("device", "revoke", "--device", b.store.deviceId())
        val bFiles = File(dir, "W02")
        assertTrue(bFiles.listFiles()!!.any { it.name.endsWith(".db") })
        Session.current = b
        val result = SyncWorker(Context(), WorkerParameters()).doWork()
        assertIs<ListenableWorker.Result.Failure>(result)
        assertEquals(null, Session.current)
        assertEquals(emptyList(), bFiles.listFiles()!!.filter { it.name.startsWith("doorstep-") }.map { it.name })
        assertFailsWith<DoorstepException.Closed> { b.store.householdIds() }
        // A's phone syncs on.
        Session.current = a
        assertIs<ListenableWorker.Result.Success>(SyncWorker(Context(), WorkerParameters()).doWork())
        assertEquals(setOf(h1, h2), a.store.householdIds().toSet())
        Session.current = null
        subA.close()
        subB.close()
        assertFalse(a.store.householdIds().isEmpty())
    }
}
