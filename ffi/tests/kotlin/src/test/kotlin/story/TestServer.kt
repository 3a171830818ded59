package story

import java.io.File
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * A real doorstep-server on 127.0.0.1 (the binary from `cargo build -p doorstep-server`,
 * path in the `doorstep.server` system property), set up through its CLI as an admin would.
 * One per test run; stopped at JVM exit.
 */
object TestServer {
    private val binary = File(System.getProperty("doorstep.server") ?: error("doorstep.server is not set"))
    val data: File = Files.createTempDirectory("doorstep-server").toFile()
    val url: String
    val port: Int
    private val process: Process

    /** The server's database is encrypted: a fresh key for the run, handed to every
     *  doorstep-server command through an environment variable (`--key-env`). */
    private val key: String = java.security.SecureRandom().let { r ->
        ByteArray(32).also { r.nextBytes(it) }.joinToString("") { "%02x".format(it) }
    }

    private fun command(vararg args: String): ProcessBuilder = ProcessBuilder(*args).also {
        it.environment()["DOORSTEP_KEY_ENV"] = "DOORSTEP_KOTLIN_SERVER_KEY"
        it.environment()["DOORSTEP_KOTLIN_SERVER_KEY"] = key
    }

    init {
        check(binary.canExecute()) { "build the server first: cargo build -p doorstep-server ($binary)" }
        port = ServerSocket(0, 0, java.net.InetAddress.getLoopbackAddress()).use { it.localPort }
        process = command(binary.path, "serve", "--data", data.path, "--listen", "127.0.0.1:$port")
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(File(data, "server.log"))
            .start()
        Runtime.getRuntime().addShutdownHook(Thread { process.destroy(); process.waitFor(10, TimeUnit.SECONDS) })
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20)
        while (true) {
            check(process.isAlive) { "the server exited: " + File(data, "server.log").readText() }
            val up = runCatching { Socket().use { it.connect(InetSocketAddress("127.0.0.1", port), 200) } }.isSuccess
            if (up) break
            check(System.nanoTime() < deadline) { "the server did not start" }
            Thread.sleep(50)
        }
        url = "http://127.0.0.1:$port"
    }

    /** Runs an admin command against the server's data; returns its trimmed stdout. */
    fun cli(vararg args: String): String {
        val p = command(binary.path, *args, "--data", data.path).redirectErrorStream(false).start()
        val out = p.inputStream.bufferedReader().readText()
        val err = p.errorStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "doorstep-server ${args.joinToString(" ")} failed: $err" }
        return out.trim()
    }

    /** A new station (each test has its own, so no test sees another's households). */
    fun newStation(name: String = "石桥镇社工站"): String = cli("station", "create", "--name", name)

    /** A new worker of `station` and a one-time code for a device of theirs. */
    fun newWorkerCode(station: String, label: String): String {
        val worker = cli("worker", "add", "--station", station, "--label", label, "--team", "station")
        return deviceCode(worker)
    }

    fun deviceCode(worker: String): String =
        cli("device", "enroll", "--worker", worker).lines().first { it.startsWith("code") }.split(Regex("\\s+"))[1]
}
