// The few Android and androidx.work declarations the guide's code (docs/embedding.md) uses,
// so that code compiles and runs on the JVM. Signatures follow the Android SDK and
// androidx.work 2.9; the bodies are the least that lets the tests run the guide's code
// (androidx is not on Maven Central and the Android SDK is not on this project's machines).
// Nothing of Doorstep is stubbed: the guide's code calls the real library.
package android.content

open class Context
