//! Moving bytes between two plain TCP sockets: splice(2) through a pipe per direction (no copy
//! into user space), or tokio's user-space `copy_bidirectional`. Both half-close correctly: EOF on
//! one side becomes a write shutdown on the other, and the other direction keeps flowing.

use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::metrics::BackendStats;
use crate::server::CopyMode;

/// Largest chunk moved per splice call (the default pipe capacity).
const CHUNK: usize = 1 << 16;

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
            let up = splice_one_way(&client, &upstream, &stats.bytes_in);
            let down = splice_one_way(&upstream, &client, &stats.bytes_out);
            tokio::try_join!(up, down).map(|_| ())
        }
    }
}

/// Splice `from` → pipe → `to` until EOF on `from`, then shut down `to`'s write side.
///
/// The pipe is created lazily on the first readable event, so an idle connection holds no pipe.
async fn splice_one_way(
    from: &TcpStream,
    to: &TcpStream,
    counter: &crate::metrics::Counter,
) -> io::Result<()> {
    let mut pipe: Option<(OwnedFd, OwnedFd)> = None;
    loop {
        from.readable().await?;
        let (rd, wr) = match &pipe {
            Some(p) => p,
            None => pipe.insert(
                nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
                    .map_err(io::Error::from)?,
            ),
        };
        // The pipe is empty here, so EAGAIN can only mean "socket not readable".
        let n = match from.try_io(Interest::READABLE, || {
            splice(
                from,
                None,
                wr,
                None,
                CHUNK,
                SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
            )
            .map_err(io::Error::from)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // Peer finished sending: pass the half-close on. NotConnected means it already went.
            return match socket2::SockRef::from(to).shutdown(Shutdown::Write) {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
                _ => Ok(()),
            };
        }
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
        counter.add(n as u64);
    }
}
