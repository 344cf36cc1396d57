//! Binary upgrade without refusing a connection: the running root LB hands its listening
//! sockets to its successor over a Unix socket (`SCM_RIGHTS`), as Pingora and HAProxy do.
//!
//! A root LB started with `--upgrade-socket PATH` listens there. A new one started with the same
//! flag connects first; if something answers, it is sent every listening socket (TCP and UDP),
//! adopts them, starts serving on them and answers `ready`. Only then does the old process stop
//! accepting, drain its connections for the table's grace period and end. The sockets are never
//! closed in between, so no client is refused: connections the old process accepted finish
//! there, later ones go to the new process. If the new process fails before `ready`, the old
//! one keeps serving as if nothing happened. The new process then listens on PATH itself.
//!
//! Wire format, old → new: `MAGIC\n`, the socket count `N\n`, `N` lines `tcp|udp ADDR\n`, then
//! `N` one-byte messages each carrying one descriptor (one per message, so a stream read can
//! never merge two descriptors' control data). New → old: `ready\n`. The path is created mode
//! 0600: only the same user can take the sockets.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::table::Proto;

/// First line of a hand-off: protocol name and version.
pub const MAGIC: &str = "edgeplane-rootlb-handoff/1";
/// Most sockets one hand-off carries (a root LB has one per public port).
const MAX_SOCKETS: usize = 65_536;
/// How long either side waits for the other at each step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a hand-off failed. The old process keeps serving in every case.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("upgrade socket: {0}")]
    Io(#[from] io::Error),
    #[error("upgrade socket: passing descriptors: {0}")]
    Fd(#[from] nix::Error),
    #[error("upgrade socket: unexpected message from the other process: {0}")]
    Protocol(String),
}

/// One listening socket as handed over.
pub struct Socket {
    pub proto: Proto,
    pub addr: SocketAddr,
    pub fd: OwnedFd,
}

/// The old process's side: the hand-off listener asks the server loop for its sockets, and
/// tells it through `done` when the successor serves (it then drains and ends; a dropped `done`
/// means the hand-off failed and it carries on).
pub struct Request {
    pub reply: oneshot::Sender<Vec<Socket>>,
    pub done: oneshot::Receiver<()>,
}

/// Sockets taken over from the previous process.
pub struct Inherited {
    pub tcp: Vec<std::net::TcpListener>,
    pub udp: Vec<std::net::UdpSocket>,
    conn: UnixStream,
}

impl Inherited {
    /// Tells the previous process that this one serves; it then stops accepting and drains.
    pub fn ready(mut self) -> io::Result<()> {
        self.conn.write_all(b"ready\n")
    }
}

/// Listens on `path` for a successor (a stale file from a dead process is replaced).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serves hand-offs on `listener` until one succeeds (or the server loop is gone).
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Request>) {
    loop {
        let conn = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                tracing::warn!("upgrade socket: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (reply, sockets) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        let req = Request {
            reply,
            done: done_rx,
        };
        if requests.send(req).await.is_err() {
            return;
        }
        // No sockets: duplicating them failed (logged there); the successor sees the
        // connection close, and a later attempt may succeed.
        let Ok(sockets) = sockets.await else {
            continue;
        };
        let result = async {
            let conn = conn.into_std()?;
            conn.set_nonblocking(false)?;
            conn.set_read_timeout(Some(STEP_TIMEOUT))?;
            conn.set_write_timeout(Some(STEP_TIMEOUT))?;
            tokio::task::spawn_blocking(move || send_and_wait(conn, &sockets))
                .await
                .map_err(|e| HandoffError::Protocol(e.to_string()))?
        };
        match result.await {
            Ok(()) => {
                tracing::info!("upgrade: the new process serves; draining and stopping");
                let _ = done.send(());
                return;
            }
            Err(e) => tracing::warn!("upgrade aborted, still serving: {e}"),
        }
    }
}

fn send_and_wait(mut conn: UnixStream, sockets: &[Socket]) -> Result<(), HandoffError> {
    let mut header = format!("{MAGIC}\n{}\n", sockets.len());
    for s in sockets {
        header.push_str(&format!("{} {}\n", s.proto, s.addr));
    }
    conn.write_all(header.as_bytes())?;
    for s in sockets {
        let fds = [s.fd.as_raw_fd()];
        sendmsg::<()>(
            conn.as_raw_fd(),
            &[IoSlice::new(b"F")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )?;
    }
    match read_line(&mut conn)?.as_str() {
        "ready" => Ok(()),
        other => Err(HandoffError::Protocol(format!(
            "expected ready, got {other:?}"
        ))),
    }
}

/// The new process's side: takes over the sockets of a root LB listening on `path`, if any.
pub async fn take_over(path: &Path) -> Result<Option<Inherited>, HandoffError> {
    let conn = match tokio::net::UnixStream::connect(path).await {
        Ok(c) => c.into_std()?,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(STEP_TIMEOUT))?;
    conn.set_write_timeout(Some(STEP_TIMEOUT))?;
    tokio::task::spawn_blocking(move || receive(conn))
        .await
        .map_err(|e| HandoffError::Protocol(e.to_string()))?
        .map(Some)
}

fn receive(mut conn: UnixStream) -> Result<Inherited, HandoffError> {
    let magic = read_line(&mut conn)?;
    if magic != MAGIC {
        return Err(HandoffError::Protocol(format!(
            "expected {MAGIC:?}, got {magic:?}"
        )));
    }
    let n: usize = read_line(&mut conn)?
        .parse()
        .ok()
        .filter(|n| *n <= MAX_SOCKETS)
        .ok_or_else(|| HandoffError::Protocol("bad socket count".into()))?;
    let mut announced = Vec::with_capacity(n);
    for _ in 0..n {
        let line = read_line(&mut conn)?;
        let parsed = line.split_once(' ').and_then(|(p, a)| {
            let proto = match p {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return None,
            };
            Some((proto, a.parse::<SocketAddr>().ok()?))
        });
        announced.push(parsed.ok_or_else(|| HandoffError::Protocol(line.clone()))?);
    }
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for (proto, addr) in announced {
        let fd = receive_fd(&conn)?;
        match proto {
            Proto::Tcp => {
                let l = std::net::TcpListener::from(fd);
                check_addr(l.local_addr()?, addr)?;
                tcp.push(l);
            }
            Proto::Udp => {
                let s = std::net::UdpSocket::from(fd);
                check_addr(s.local_addr()?, addr)?;
                udp.push(s);
            }
        }
    }
    Ok(Inherited { tcp, udp, conn })
}

fn check_addr(actual: SocketAddr, announced: SocketAddr) -> Result<(), HandoffError> {
    if actual != announced {
        return Err(HandoffError::Protocol(format!(
            "socket announced as {announced} is bound to {actual}"
        )));
    }
    Ok(())
}

/// Receives the one descriptor that comes with the next one-byte message.
fn receive_fd(conn: &UnixStream) -> Result<OwnedFd, HandoffError> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got: Option<OwnedFd> = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel has just installed `fd` in this process for this message;
                // nothing else knows or owns it, so it is owned exactly once, here.
                #[allow(unsafe_code)]
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_some() {
                    return Err(HandoffError::Protocol(
                        "two descriptors in one message".into(),
                    ));
                }
                got = Some(owned);
            }
        }
    }
    if msg.bytes == 0 {
        return Err(HandoffError::Protocol(
            "connection closed mid-hand-off".into(),
        ));
    }
    got.ok_or_else(|| HandoffError::Protocol("message without a descriptor".into()))
}

/// A `\n`-terminated line of at most 512 bytes, read a byte at a time (never past the line, so
/// the descriptor messages after it stay unread).
fn read_line(conn: &mut UnixStream) -> Result<String, HandoffError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if conn.read(&mut byte)? == 0 {
            return Err(HandoffError::Protocol("connection closed".into()));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > 512 {
            return Err(HandoffError::Protocol("line too long".into()));
        }
    }
    String::from_utf8(line).map_err(|_| HandoffError::Protocol("line is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_predecessor_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            take_over(&dir.path().join("none.sock"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_peer_that_is_not_a_root_lb_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sock");
        let l = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the same user may take the sockets"
        );
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let (mut c, _) = l.accept().await.unwrap();
            c.write_all(b"SSH-2.0-something\n").await.unwrap();
        });
        let err = take_over(&path).await.err().expect("refused");
        assert!(err.to_string().contains("expected"), "{err}");
    }

    #[tokio::test]
    async fn sockets_round_trip_with_their_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sock");
        let l = bind(&path).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (t_addr, u_addr) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
        let (req_tx, mut req_rx) = mpsc::channel(1);
        let server = tokio::spawn(serve(l, req_tx));
        let old = tokio::spawn(async move {
            let req: Request = req_rx.recv().await.unwrap();
            let sockets = vec![
                Socket {
                    proto: Proto::Tcp,
                    addr: t_addr,
                    fd: tcp.into(),
                },
                Socket {
                    proto: Proto::Udp,
                    addr: u_addr,
                    fd: udp.into(),
                },
            ];
            req.reply.send(sockets).ok().unwrap();
            req.done.await.is_ok()
        });
        let inherited = take_over(&path).await.unwrap().expect("a predecessor");
        assert_eq!(inherited.tcp[0].local_addr().unwrap(), t_addr);
        assert_eq!(inherited.udp[0].local_addr().unwrap(), u_addr);
        // The inherited listener accepts.
        let _c = std::net::TcpStream::connect(t_addr).unwrap();
        inherited.tcp[0].accept().unwrap();
        inherited.ready().unwrap();
        assert!(old.await.unwrap(), "the old side is told to drain");
        server.await.unwrap();
    }
}
