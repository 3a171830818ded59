// See Context.kt: a JVM stand-in for android.os.Handler, running posted work on one thread
// (as a Looper would).
package android.os

import java.util.concurrent.Executors

class Handler {
    private val looper = Executors.newSingleThreadExecutor { r -> Thread(r, "main").apply { isDaemon = true } }

    fun post(r: Runnable): Boolean {
        looper.execute(r)
        return true
    }
}
