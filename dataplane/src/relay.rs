//! Moving bytes between two plain TCP sockets. Three strategies (see [`CopyMode`]):
//! - `splice`: splice(2) through a pipe per direction, no copy into user space;
//! - `copy`: tokio's `copy_bidirectional` with a buffer per direction per connection;
//! - `auto`: read into a per-thread scratch buffer and write straight on (no per-connection
//!   buffer, so idle connections cost no buffer memory), switching a direction to splice once a
//!   read fills the whole scratch buffer (bulk transfer) and back when reads get small.
//!
//! Pipes come from a per-thread pool and go back to it as soon as they are empty, i.e. after every
//! chunk: a connection holds a pipe only while a chunk is in flight, so idle connections hold
//! none, and pipes can be large (fewer splice calls and wake-ups per byte for bulk streams)
//! without the per-user pipe quota (`fs.pipe-user-pages-soft`) growing with the connection count.
//!
//! All half-close correctly: EOF on one side becomes a write shutdown on the other, and the other
//! direction keeps flowing.

use std::cell::RefCell;
use std::io::{self, Read as _, Write as _};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::runtime::CopyMode;
use crate::stats::BackendStats;

/// Pipe capacity asked for with F_SETPIPE_SZ (the default is 64 KiB; unprivileged processes may
/// go up to `fs.pipe-max-size`, 1 MiB by default). A chunk is at most this big. Measured on one
/// iperf3 stream through the proxy (2 vCPUs, loopback): 1 MiB chunks moved 1.8-2.4 GB/s at
/// 0.17-0.21 CPU-s/GB against 1.4-1.7 GB/s at 0.29-0.34 CPU-s/GB with 64 KiB chunks.
const PIPE_SIZE: usize = 1 << 20;
/// Empty pipes kept per worker thread for reuse.
const POOL_MAX: usize = 64;
/// Scratch buffer of `auto` mode; a read that fills it switches the direction to splice.
const SCRATCH: usize = 16 * 1024;
/// In `auto` mode, a splice read smaller than this switches the direction back to copying.
const SMALL: usize = 4 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A non-blocking pipe and its capacity.
struct Pipe {
    rd: OwnedFd,
    wr: OwnedFd,
    cap: usize,
}

impl Pipe {
    /// An empty pipe from this thread's pool, or a new one.
    fn take() -> io::Result<Pipe> {
        if let Some(p) = PIPES.with_borrow_mut(Vec::pop) {
            return Ok(p);
        }
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // Best effort: over the quota or the limit the pipe keeps its default size.
        let size = i32::try_from(PIPE_SIZE).unwrap_or(i32::MAX);
        let cap = fcntl(&wr, FcntlArg::F_SETPIPE_SZ(size))
            .or_else(|_| fcntl(&wr, FcntlArg::F_GETPIPE_SZ))
            .map_or(1 << 16, |c| usize::try_from(c).unwrap_or(1 << 16));
        Ok(Pipe { rd, wr, cap })
    }

    /// Return an empty pipe to the pool (a pipe with data in it is dropped instead, never
    /// returned: the caller only calls this after moving everything out).
    fn give(self) {
        PIPES.with_borrow_mut(|pool| {
            if pool.len() < POOL_MAX {
                pool.push(self);
            }
        });
    }
}

/// Relay until both directions reach EOF or one fails.
pub async fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    mode: CopyMode,
    buf: usize,
    stats: &BackendStats,
) -> io::Result<()> {
    match mode {
        CopyMode::Copy => {
            let (i, o) =
                tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, buf, buf)
                    .await?;
            stats.bytes_in.add(i);
            stats.bytes_out.add(o);
            Ok(())
        }
        CopyMode::Splice => {
            let one_done = AtomicBool::new(false);
            let up = splice_one_way(&client, &upstream, &stats.bytes_in, &one_done);
            let down = splice_one_way(&upstream, &client, &stats.bytes_out, &one_done);
            tokio::try_join!(up, down).map(|_| ())
        }
        CopyMode::Auto => {
            let one_done = AtomicBool::new(false);
            let up = auto_one_way(&client, &upstream, &stats.bytes_in, &one_done);
            let down = auto_one_way(&upstream, &client, &stats.bytes_out, &one_done);
            tokio::try_join!(up, down).map(|_| ())
        }
    }
}

/// EOF from one side: pass it on as a write shutdown of the other. When the other direction
/// has already ended, the relay is over and both sockets are about to be closed, which sends the
/// FIN anyway (nothing is left unread on `to`: its own EOF was read), so the shutdown call is
/// skipped: one syscall less per connection.
fn end_direction(to: &TcpStream, one_done: &AtomicBool) -> io::Result<()> {
    if one_done.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    shutdown_write(to)
}

fn shutdown_write(to: &TcpStream) -> io::Result<()> {
    // NotConnected means the peer is already gone; nothing left to tell it.
    match socket2::SockRef::from(to).shutdown(Shutdown::Write) {
        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
        _ => Ok(()),
    }
}

enum Step {
    /// Spurious wake-up: nothing to read.
    Again,
    Eof,
    /// Bytes read, whether the read filled the scratch buffer.
    Data(usize, bool),
}

/// One direction of `auto` mode.
async fn auto_one_way(
    from: &TcpStream,
    to: &TcpStream,
    counter: &crate::stats::Counter,
    one_done: &AtomicBool,
) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut bulk = false;
    loop {
        from.readable().await?;
        if bulk {
            let Some(n) = splice_chunk(from, to).await? else {
                continue;
            };
            if n == 0 {
                return end_direction(to, one_done);
            }
            counter.add(n as u64);
            bulk = n >= SMALL;
            continue;
        }
        let step = SCRATCH_BUF.with_borrow_mut(|buf| copy_now(from, to, buf, &mut pending))?;
        match step {
            Step::Again => continue,
            Step::Eof => return end_direction(to, one_done),
            Step::Data(n, full) => {
                counter.add(n as u64);
                bulk = full;
            }
        }
        // The receiver is slower than the sender: finish this chunk before reading more.
        let mut off = 0;
        while off < pending.len() {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                (&*socket2::SockRef::from(to)).write(&pending[off..])
            }) {
                Ok(m) => off += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        pending = Vec::new();
    }
}

/// Read once into `buf` and write it on without waiting; what the peer does not take now goes to
/// `pending`. A short read clears read readiness (the socket is drained), saving the EAGAIN call.
fn copy_now(
    from: &TcpStream,
    to: &TcpStream,
    buf: &mut [u8],
    pending: &mut Vec<u8>,
) -> io::Result<Step> {
    let mut got = 0;
    let r = from.try_io(Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(from)).read(buf)?;
        got = n;
        if n > 0 && n < buf.len() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match r {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if got == 0 {
                return Ok(Step::Again);
            }
        }
        Err(e) => return Err(e),
    }
    if got == 0 {
        return Ok(Step::Eof);
    }
    let mut off = 0;
    while off < got {
        match (&*socket2::SockRef::from(to)).write(&buf[off..got]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(m) => off += m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    pending.extend_from_slice(&buf[off..got]);
    Ok(Step::Data(got, got == buf.len()))
}

/// Move one chunk `from` → pipe → `to` (whatever `from` has, up to the pipe's capacity).
/// `None`: not readable after all; `Some(0)`: EOF.
async fn splice_chunk(from: &TcpStream, to: &TcpStream) -> io::Result<Option<usize>> {
    let pipe = Pipe::take()?;
    let n = match splice_in(from, &pipe.wr, pipe.cap)? {
        Some(n) if n > 0 => n,
        other => {
            pipe.give();
            return Ok(other);
        }
    };
    // On error or cancellation (drain) the pipe still holds data and is dropped with `pipe`.
    splice_out(&pipe.rd, to, n).await?;
    pipe.give();
    Ok(Some(n))
}

/// Splice what `from` has into the (empty) pipe. `None`: not readable after all.
fn splice_in(from: &TcpStream, wr: &OwnedFd, max: usize) -> io::Result<Option<usize>> {
    // The pipe is empty here, so EAGAIN can only mean "socket not readable".
    match from.try_io(Interest::READABLE, || {
        splice(
            from,
            None,
            wr,
            None,
            max,
            SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
        )
        .map_err(io::Error::from)
    }) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Move all `n` bytes in the pipe to `to`.
async fn splice_out(rd: &OwnedFd, to: &TcpStream, n: usize) -> io::Result<()> {
    let mut left = n;
    while left > 0 {
        to.writable().await?;
        match to.try_io(Interest::WRITABLE, || {
            splice(
                rd,
                None,
                to,
                None,
                left,
                SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
            )
            .map_err(io::Error::from)
        }) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(m) => left -= m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Splice `from` → pipe → `to` until EOF on `from`, then shut down `to`'s write side.
async fn splice_one_way(
    from: &TcpStream,
    to: &TcpStream,
    counter: &crate::stats::Counter,
    one_done: &AtomicBool,
) -> io::Result<()> {
    loop {
        from.readable().await?;
        match splice_chunk(from, to).await? {
            None => {}
            Some(0) => return end_direction(to, one_done),
            Some(n) => counter.add(n as u64),
        }
    }
}
