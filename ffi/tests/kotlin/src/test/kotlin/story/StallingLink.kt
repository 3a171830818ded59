package story

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.CountDownLatch
import kotlin.concurrent.thread

/**
 * A TCP relay on 127.0.0.1 in front of the real server, standing for a phone's link. While
 * `stalled`, new connections are read but nothing reaches the server (a request stuck on a
 * dying 2G link), so a sync is reliably caught mid-way; [heldRequest] opens when such a
 * request has arrived and [heldClosed] when the client gave up on it (closed the socket).
 */
class StallingLink(private val serverPort: Int) : AutoCloseable {
    private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val url = "http://127.0.0.1:${listener.localPort}"

    @Volatile var stalled = false
    val heldRequest = CountDownLatch(1)
    val heldClosed = CountDownLatch(1)

    init {
        thread(isDaemon = true, name = "link-accept") {
            while (true) {
                val client = try { listener.accept() } catch (e: IOException) { break }
                val stall = stalled
                thread(isDaemon = true, name = "link") { if (stall) hold(client) else relay(client) }
            }
        }
    }

    private fun hold(client: Socket) = client.use {
        val buf = ByteArray(8192)
        while (true) {
            val n = try { it.getInputStream().read(buf) } catch (e: IOException) { -1 }
            if (n < 0) break
            heldRequest.countDown()
        }
        heldClosed.countDown()
    }

    private fun relay(client: Socket) {
        val server = Socket(InetAddress.getLoopbackAddress(), serverPort)
        thread(isDaemon = true, name = "link-up") { pump(client.getInputStream(), server.getOutputStream()); server.shutdownOutput() }
        pump(server.getInputStream(), client.getOutputStream())
        client.close()
        server.close()
    }

    private fun pump(from: InputStream, to: OutputStream) {
        try {
            from.copyTo(to)
        } catch (e: IOException) {
            // the other side went away
        }
    }

    override fun close() = listener.close()
}
