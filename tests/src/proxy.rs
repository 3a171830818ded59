//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1: each request is forwarded to the
//! upstream server over a fresh connection, and the next fault in the plan is applied.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward and answer normally.
    Pass,
    /// Forward the request, drop the response: the server acted, the device never hears.
    DropResponse,
    /// Forward, then send only the first part of the response and close.
    TruncateResponse,
    /// Send the request to the server twice, answer with the second response.
    DuplicateRequest,
    /// Close the connection before the request reaches the server.
    ResetBeforeForward,
    /// Forward after a delay.
    Delay(Duration),
    /// Forward only the first `n` bytes of the request, then close both sides: a link cut
    /// mid-upload (with `n` past the request's end, the server got it all and the answer
    /// is lost).
    CutRequest(usize),
    /// Forward, then send only the first `n` bytes of the response and close: a link cut
    /// mid-download.
    CutResponse(usize),
    /// If the request came on a connection that carried one before, close that connection
    /// without forwarding or answering: the server closing an idle keep-alive connection
    /// just as the request arrives. A request on a new connection passes (and consumes
    /// the fault).
    CloseIfReused,
}

#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    plan: Arc<Mutex<VecDeque<Fault>>>,
    pub log: Arc<Mutex<Vec<Fault>>>,
    /// Bytes that went on the wire: requests as far as they reached the server (a cut
    /// request counts its first bytes only) and responses as far as they reached the client.
    pub wire: Arc<Wire>,
    task: tokio::task::JoinHandle<()>,
}

/// Byte counters of a proxy (HTTP heads and bodies; not TCP/IP framing).
#[derive(Debug, Default)]
pub struct Wire {
    pub up: AtomicU64,
    pub down: AtomicU64,
}

impl Wire {
    pub fn total(&self) -> u64 {
        self.up.load(Relaxed) + self.down.load(Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let upstream = Arc::new(Mutex::new(upstream));
        let plan: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let log: Arc<Mutex<Vec<Fault>>> = Arc::default();
        let wire: Arc<Wire> = Arc::default();
        let (u, p, l, w) = (upstream.clone(), plan.clone(), log.clone(), wire.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (u, p, l, w) = (u.clone(), p.clone(), l.clone(), w.clone());
                tokio::spawn(async move {
                    let _ = serve_connection(client, u, p, l, w).await;
                });
            }
        });
        Proxy {
            addr,
            upstream,
            plan,
            log,
            wire,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Faults for the next requests, in order; afterwards requests pass.
    pub fn plan(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.plan).extend(faults);
    }

    pub fn set_upstream(&self, addr: SocketAddr) {
        *lock(&self.upstream) = addr;
    }
}

/// Read one HTTP message (headers + Content-Length body) from a stream.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(header_end + len);
    Ok(Some(buf))
}

async fn forward(upstream: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    s.write_all(request).await?;
    read_message(&mut s)
        .await?
        .ok_or_else(|| std::io::Error::other("upstream closed"))
}

async fn serve_connection(
    mut client: TcpStream,
    upstream: Arc<Mutex<SocketAddr>>,
    plan: Arc<Mutex<VecDeque<Fault>>>,
    log: Arc<Mutex<Vec<Fault>>>,
    wire: Arc<Wire>,
) -> std::io::Result<()> {
    let mut earlier = 0usize;
    while let Some(request) = read_message(&mut client).await? {
        earlier += 1;
        let mut fault = lock(&plan).pop_front().unwrap_or(Fault::Pass);
        lock(&log).push(fault);
        if fault == Fault::CloseIfReused {
            fault = if earlier > 1 {
                Fault::ResetBeforeForward
            } else {
                Fault::Pass
            };
        }
        let up = *lock(&upstream);
        let sent = match fault {
            Fault::CutRequest(n) => n.min(request.len()),
            Fault::ResetBeforeForward => 0,
            _ => request.len(),
        };
        wire.up.fetch_add(sent as u64, Relaxed);
        match fault {
            Fault::Pass => {
                let resp = forward(up, &request).await?;
                wire.down.fetch_add(resp.len() as u64, Relaxed);
                client.write_all(&resp).await?;
            }
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                let resp = forward(up, &request).await?;
                client.write_all(&resp).await?;
            }
            Fault::DropResponse => {
                let _ = forward(up, &request).await?;
                return Ok(());
            }
            Fault::TruncateResponse => {
                let resp = forward(up, &request).await?;
                client.write_all(&resp[..resp.len() / 2]).await?;
                return Ok(());
            }
            Fault::DuplicateRequest => {
                let _ = forward(up, &request).await?;
                let resp = forward(up, &request).await?;
                client.write_all(&resp).await?;
            }
            Fault::ResetBeforeForward => return Ok(()),
            Fault::CutRequest(n) => {
                let mut s = TcpStream::connect(up).await?;
                s.write_all(&request[..n.min(request.len())]).await?;
                if n >= request.len() {
                    // The whole request went: let the server answer, unheard.
                    let _ = read_message(&mut s).await;
                }
                return Ok(());
            }
            Fault::CutResponse(n) => {
                let resp = forward(up, &request).await?;
                wire.down.fetch_add(n.min(resp.len()) as u64, Relaxed);
                client.write_all(&resp[..n.min(resp.len())]).await?;
                return Ok(());
            }
            Fault::CloseIfReused => unreachable!("resolved above"),
        }
    }
    Ok(())
}
