// The Kotlin code of docs/embedding.md. Each `// guide: NAME` … `// guide: end` region is a
// ```kotlin block of the guide, character for character (checked by
// ffi/tests/python/test_embedding_guide.py); GuideTest runs it against a real server.
package guide

import android.app.Application
import android.content.Context
import android.os.Handler
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.io.File
import java.security.SecureRandom
import java.util.concurrent.TimeUnit
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import uniffi.doorstep_ffi.Answer
import uniffi.doorstep_ffi.AnswerCount
import uniffi.doorstep_ffi.AnswerValue
import uniffi.doorstep_ffi.ChangeEvent
import uniffi.doorstep_ffi.Doorstep
import uniffi.doorstep_ffi.DoorstepAndroid
import uniffi.doorstep_ffi.DoorstepException
import uniffi.doorstep_ffi.Observer
import uniffi.doorstep_ffi.Question
import uniffi.doorstep_ffi.QuestionKind
import uniffi.doorstep_ffi.Section
import uniffi.doorstep_ffi.Subscription
import uniffi.doorstep_ffi.SurveyOption
import uniffi.doorstep_ffi.enroll

// guide: android-app
/** The app's `Application`: `https://` syncs check certificates with the Android trust store. */
class FieldApp : Application() {
    override fun onCreate() {
        super.onCreate()
        DoorstepAndroid.initPlatformVerifier(this)
    }
}
// guide: end

// guide: key
/** The store's key: 32 random bytes made once, kept on disk encrypted by a Keystore key. */
fun storeKey(keystoreKey: SecretKey, file: File): ByteArray {
    if (!file.exists()) {
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, keystoreKey)
        file.writeBytes(cipher.iv + cipher.doFinal(key))
    }
    val saved = file.readBytes()
    val cipher = Cipher.getInstance("AES/GCM/NoPadding")
    cipher.init(Cipher.DECRYPT_MODE, keystoreKey, GCMParameterSpec(128, saved, 0, 12))
    return cipher.doFinal(saved, 12, saved.size - 12)
}
// guide: end

// guide: sign-in
/** The signed-in worker: one store, the server, this device's token. */
class Session(val store: Doorstep, val serverUrl: String, val token: String, val keyFile: File) {
    companion object {
        @Volatile var current: Session? = null
    }
}

suspend fun signIn(filesDir: File, keystoreKey: SecretKey, serverUrl: String, code: String): Session {
    val enrolment = enroll(serverUrl, code) // the one-time code from the station's admin
    val keyFile = File(filesDir, "doorstep-${enrolment.deviceId}.key")
    val store = Doorstep.open(
        File(filesDir, "doorstep-${enrolment.deviceId}.db").path,
        storeKey(keystoreKey, keyFile),
        enrolment.workerId,
        enrolment.stationId,
        enrolment.deviceId, // without it, the station's card leases never match this phone
    )
    // Keep enrolment.token encrypted like the key (e.g. in the same file).
    return Session(store, serverUrl, enrolment.token, keyFile).also { Session.current = it }
}
// guide: end

// guide: typing
/** From `TextWatcher.onTextChanged(s, start, before, count)`: UTF-16 positions, as is. */
suspend fun typed(store: Doorstep, householdId: String, visitId: String, s: CharSequence, start: Int, before: Int, count: Int) =
    withContext(Dispatchers.IO) {
        val inserted = s.subSequence(start, start + count).toString()
        store.spliceSectionUtf16(householdId, visitId, Section.CONCERNS, start.toULong(), before.toULong(), inserted)
    }
// guide: end

// guide: worker
class SyncWorker(ctx: Context, p: WorkerParameters) : CoroutineWorker(ctx, p) {
    override suspend fun doWork(): Result {
        val session = Session.current ?: return Result.success() // nobody signed in
        return try {
            // WorkManager stops a worker after 10 minutes: end cleanly well before that.
            val report = session.store.sync(session.serverUrl, session.token, deadlineMs = 480_000uL)
            if (report.complete) Result.success() else Result.retry() // resumes where it stopped
        } catch (e: DoorstepException.Network) {
            Result.retry() // offline: normal in the field
        } catch (e: DoorstepException.Server) {
            Result.retry()
        } catch (e: DoorstepException.Unauthorized) {
            if (e.wipe) session.wipe() else Session.current = null // re-enrol
            Result.failure()
        }
    }
}

/** The server revoked this device: erase the store, then the key (and token) that opened it. */
fun Session.wipe() {
    store.wipe()
    keyFile.delete()
    Session.current = null
}
// guide: end

// guide: schedule
fun scheduleSync(ctx: Context) {
    val request = PeriodicWorkRequestBuilder<SyncWorker>(30, TimeUnit.MINUTES)
        .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
        .build()
    WorkManager.getInstance(ctx).enqueueUniquePeriodicWork("doorstep-sync", ExistingPeriodicWorkPolicy.KEEP, request)
}
// guide: end

// guide: observe
/** Keep the returned subscription: closing it (or losing it to the GC) stops delivery. */
fun observe(store: Doorstep, mainHandler: Handler, refresh: (ChangeEvent) -> Unit): Subscription =
    store.subscribe(object : Observer {
        override fun onEvent(event: ChangeEvent) {
            mainHandler.post { refresh(event) } // called on the changing thread: hop to the UI
        }
    })
// guide: end

/** The guide's needs survey: a questionnaire, one person's answers, the counts. */
fun surveyExample(doorstep: Doorstep, householdId: String, personId: String): List<AnswerCount> {
    // guide: survey
    val q = listOf(
        Question("living", "居住情况", QuestionKind.Single(listOf(
            SurveyOption("alone", "独居"), SurveyOption("spouse", "与配偶同住")))),
        Question("mood", "最近心情", QuestionKind.Scale(1, 5)),
        Question("words", "想对社工说的话", QuestionKind.Text),
    )
    val surveyId = doorstep.createSurvey("高龄独居老人需求调查", q)
    val v1 = doorstep.survey(surveyId).versions.last().id
    doorstep.respondToSurvey(householdId, personId, surveyId, v1, listOf(
        Answer("living", AnswerValue.Choice("alone")),
        Answer("mood", AnswerValue.Scale(4)),
    ))
    doorstep.surveyCounts(surveyId)   // [AnswerCount(versionId, "living", "alone", 1, null), ...]
    // guide: end
    return doorstep.surveyCounts(surveyId)
}
