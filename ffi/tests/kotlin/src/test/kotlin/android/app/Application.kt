// The Android SDK's `Application`, as much of it as the guide's code uses (see Context.kt).
package android.app

import android.content.Context

open class Application : Context() {
    open fun onCreate() {}
}
