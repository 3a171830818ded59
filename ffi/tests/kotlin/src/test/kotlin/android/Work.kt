// See Context.kt: JVM stand-ins for the androidx.work API the guide uses (work-runtime-ktx
// 2.9 signatures). WorkManager here only records what was enqueued.
@file:Suppress("unused", "UNUSED_PARAMETER")

package androidx.work

import android.content.Context
import java.util.concurrent.TimeUnit
import kotlin.reflect.KClass

class WorkerParameters

abstract class ListenableWorker(val applicationContext: Context, val params: WorkerParameters) {
    sealed class Result {
        class Success : Result()
        class Retry : Result()
        class Failure : Result()

        companion object {
            @JvmStatic fun success(): Result = Success()
            @JvmStatic fun retry(): Result = Retry()
            @JvmStatic fun failure(): Result = Failure()
        }
    }
}

abstract class CoroutineWorker(appContext: Context, params: WorkerParameters) :
    ListenableWorker(appContext, params) {
    abstract suspend fun doWork(): Result
}

enum class NetworkType { NOT_REQUIRED, CONNECTED, UNMETERED }

class Constraints private constructor(val requiredNetworkType: NetworkType) {
    class Builder {
        private var network = NetworkType.NOT_REQUIRED
        fun setRequiredNetworkType(networkType: NetworkType): Builder = apply { network = networkType }
        fun build(): Constraints = Constraints(network)
    }
}

class PeriodicWorkRequest(val worker: KClass<out ListenableWorker>, val intervalMinutes: Long, val constraints: Constraints?) {
    class Builder(private val worker: KClass<out ListenableWorker>, private val minutes: Long) {
        private var constraints: Constraints? = null
        fun setConstraints(constraints: Constraints): Builder = apply { this.constraints = constraints }
        fun build(): PeriodicWorkRequest = PeriodicWorkRequest(worker, minutes, constraints)
    }
}

inline fun <reified W : ListenableWorker> PeriodicWorkRequestBuilder(
    repeatInterval: Long,
    repeatIntervalTimeUnit: TimeUnit,
): PeriodicWorkRequest.Builder = PeriodicWorkRequest.Builder(W::class, repeatIntervalTimeUnit.toMinutes(repeatInterval))

enum class ExistingPeriodicWorkPolicy { KEEP, UPDATE, CANCEL_AND_REENQUEUE }

class WorkManager private constructor() {
    val enqueued = mutableMapOf<String, PeriodicWorkRequest>()

    fun enqueueUniquePeriodicWork(name: String, policy: ExistingPeriodicWorkPolicy, request: PeriodicWorkRequest) {
        if (policy != ExistingPeriodicWorkPolicy.KEEP || name !in enqueued) enqueued[name] = request
    }

    companion object {
        private val instance = WorkManager()
        @JvmStatic fun getInstance(context: Context): WorkManager = instance
    }
}
