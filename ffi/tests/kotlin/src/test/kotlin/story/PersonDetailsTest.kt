package story

import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.doorstep_ffi.Doorstep
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.IdNumberCheck
import uniffi.doorstep_ffi.IdNumberProblem
import uniffi.doorstep_ffi.NewHousehold
import uniffi.doorstep_ffi.NewPerson
import uniffi.doorstep_ffi.NewVisit
import uniffi.doorstep_ffi.Sex
import uniffi.doorstep_ffi.VisitCompanion
import uniffi.doorstep_ffi.VisitEdit
import uniffi.doorstep_ffi.VisitKind
import uniffi.doorstep_ffi.checkIdNumber

/** Issue 17 from Kotlin: an ID-number form field, and companions on a visit. */
class PersonDetailsTest {
    @TempDir
    lateinit var dir: File

    private fun store() = Doorstep.open(
        File(dir, "s.db").path, ByteArray(32) { it.toByte() },
        "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-0000000000aa", null,
    )

    @Test
    fun `a typed ID number is checked and gives the birth date and sex to offer`() {
        // The standard's published example, typed with spaces and a lower-case x.
        assertEquals(
            IdNumberCheck.Valid(idNumber = "11010519491231002X", birthDate = "1949-12-31", sex = Sex.FEMALE),
            checkIdNumber("110105 19491231 002x"),
        )
        val wrong = checkIdNumber("11010519491231003X")
        assertIs<IdNumberCheck.Invalid>(wrong)
        assertEquals(IdNumberProblem.WRONG_CHECK_CHARACTER, wrong.problem)
        assertFalse(wrong.message.contains("1101"))

        val s = store()
        val hh = s.createHousehold(NewHousehold("HH-KT0017", "石桥村", "", null, emptyList(), emptyList(), ""))
        val e = assertFailsWith<DoorstepException.InvalidInput> {
            s.addPerson(hh, NewPerson(
                name = "王奶奶", sex = Sex.MALE, birthDate = null, idNumber = "11010519491231002X",
                relation = "户主", guardian = true, categories = emptyList(), school = null, grade = null,
            ))
        }
        assertFalse(e.message!!.contains("1101"))
        s.close()
    }

    @Test
    fun `companions are recorded on a visit, and may be left out`() {
        val s = store()
        val hh = s.createHousehold(NewHousehold("HH-KT0018", "石桥村", "", null, emptyList(), emptyList(), ""))
        val plain = s.startVisit(hh, NewVisit(
            kind = VisitKind.HOME, date = "2026-11-29", startedAtMs = System.currentTimeMillis(), gps = null,
            otherWorkerIds = emptyList(), presentPersonIds = emptyList(),
        ))
        val director = VisitCompanion(name = "李芳", role = "村儿童主任")
        val v = s.startVisit(hh, NewVisit(
            kind = VisitKind.HOME, date = "2026-11-29", startedAtMs = System.currentTimeMillis(), gps = null,
            otherWorkerIds = emptyList(), presentPersonIds = emptyList(), companions = listOf(director),
        ))
        val officer = VisitCompanion(name = "张伟", role = "派出所民警")
        s.editVisit(hh, v, VisitEdit.AddCompanion(officer))
        val visits = s.household(hh).visits.associateBy { it.id }
        assertEquals(emptyList(), visits.getValue(plain).companions)
        assertEquals(listOf(officer, director), visits.getValue(v).companions)
        s.close()
    }
}
