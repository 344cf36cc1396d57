//! Batched datagram I/O for the UDP path: one recvmmsg(2) takes up to [`BATCH`] reads into a
//! per-thread buffer ([`RING`]), each one datagram or, with UDP GRO, a train of them, and a
//! [`Train`] sends consecutive datagrams to one destination as one UDP GSO sendmsg(2) (up to 64
//! equal-sized datagrams, its iovecs pointing straight into the receive buffer, no copy).
//!
//! recvmmsg(2) and sendmsg(2) with UDP_SEGMENT are called through `libc` directly: the safe
//! wrappers allocate per call. Every `unsafe` block here has a SAFETY comment.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use nix::libc;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Largest UDP payload (a receive slot holds any datagram, so nothing is ever truncated).
const MAX_DATAGRAM: usize = 65_536;
/// Datagrams taken per recvmmsg(2), i.e. per wake-up of a listener or return path.
pub(super) const BATCH: usize = 64;

/// The receive side of a batch: [`BATCH`] slots of [`MAX_DATAGRAM`] bytes plus sender addresses.
/// 4 MiB of address space per worker thread, but the allocation is zeroed lazily by the OS and
/// only touched pages become resident: 1400-byte datagrams cost one page per slot.
///
/// With UDP GRO on the socket ([`crate::sockets::enable_gro`]), one slot may hold several datagrams of one
/// sender coalesced by the kernel, all `seg` bytes but a shorter last one; [`RxRing::datagrams`]
/// splits them again, so datagram boundaries are kept.
pub(super) struct RxRing {
    buf: Box<[u8]>,
    addrs: [libc::sockaddr_storage; BATCH],
    lens: [usize; BATCH],
    /// GRO segment size of each slot (0: the slot is one datagram).
    segs: [u16; BATCH],
    cmsgs: [Cmsg; BATCH],
}

/// Control-message space of one received message: room for the UDP_GRO message (an int,
/// CMSG_SPACE(4) = 24 bytes on 64-bit targets), cmsghdr-aligned. No other control message is
/// enabled on these sockets.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; 32]);

thread_local! {
    /// Shared by every listener and flow on a worker thread and never held across an await, so
    /// an idle flow or listener costs no buffer.
    pub(super) static RING: RefCell<Box<RxRing>> = RefCell::new(RxRing::new());
}

impl RxRing {
    fn new() -> Box<Self> {
        Box::new(Self {
            buf: vec![0; BATCH * MAX_DATAGRAM].into_boxed_slice(),
            // SAFETY: sockaddr_storage is a plain C struct for which all-zero bytes are valid.
            addrs: unsafe { std::mem::zeroed() },
            lens: [0; BATCH],
            segs: [0; BATCH],
            cmsgs: [Cmsg([0; 32]); BATCH],
        })
    }

    /// One non-blocking recvmmsg(2) into slots `0..n`; returns `n`. `with_addrs` records each
    /// sender (listeners); a connected socket's sender is known (return paths).
    fn recv(&mut self, fd: RawFd, with_addrs: bool) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes are valid
        // (null pointers, zero lengths).
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (v, h)) in iov.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            let slot = &mut self.buf[i * MAX_DATAGRAM..(i + 1) * MAX_DATAGRAM];
            v.iov_base = slot.as_mut_ptr().cast();
            v.iov_len = MAX_DATAGRAM;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            if with_addrs {
                h.msg_hdr.msg_name = std::ptr::from_mut(&mut self.addrs[i]).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
            h.msg_hdr.msg_control = self.cmsgs[i].0.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = size_of::<Cmsg>() as _;
        }
        // SAFETY: every header points at a distinct live slot of `self.buf` (MAX_DATAGRAM bytes),
        // at its own live control buffer with its size in msg_controllen and, if set, at a live
        // sockaddr_storage with its size in msg_namelen; `iov`, `hdrs` and `self` outlive the
        // call, which does not block (MSG_DONTWAIT) or keep the pointers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (i, h) in hdrs[..n].iter().enumerate() {
            self.lens[i] = h.msg_len as usize;
            self.segs[i] = gro_segment(&h.msg_hdr);
        }
        Ok(n)
    }

    /// The datagrams of slot `i`: one, or the datagrams the kernel coalesced into it.
    pub(super) fn datagrams(&self, i: usize) -> impl Iterator<Item = &[u8]> {
        let d = &self.buf[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.lens[i]];
        let seg = match usize::from(self.segs[i]) {
            // A plain datagram, possibly empty (chunks of an empty slice yield nothing).
            0 => d.len().max(1),
            s => s,
        };
        d.chunks(seg).chain(d.is_empty().then_some(d))
    }

    pub(super) fn addr(&self, i: usize) -> Option<SocketAddr> {
        sockaddr_to_std(&self.addrs[i])
    }
}

/// The UDP_GRO segment size the kernel attached to a received message (0 if none).
fn gro_segment(m: &libc::msghdr) -> u16 {
    // SAFETY: `m` is a header recvmmsg(2) filled in: msg_control points at a live buffer of
    // which the kernel used msg_controllen bytes, so CMSG_FIRSTHDR/CMSG_NXTHDR stay inside it;
    // the int payload may be unaligned, hence read_unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(m);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return u16::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(m, c);
        }
    }
    0
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) here; sockaddr_storage is
            // large and aligned enough for it.
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6 (family AF_INET6).
            let a = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// Receive a batch on `sock`; returns how many slots were filled. A short batch means the socket
/// is drained, so read readiness is cleared then (saving the EAGAIN call). Errors (e.g. an ICMP
/// port unreachable queued on a connected socket, which reports it once) are returned;
/// readiness stays set and the next call gets the data.
pub(super) fn recv_batch(
    sock: &UdpSocket,
    ring: &mut RxRing,
    with_addrs: bool,
) -> io::Result<usize> {
    let fd = sock.as_raw_fd();
    let mut got = 0;
    let r = sock.try_io(Interest::READABLE, || {
        got = ring.recv(fd, with_addrs)?;
        if got < BATCH {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match r {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(got),
    }
}

/// Segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
const GSO_MAX_SEGS: usize = 64;
/// Bytes per GSO send (the UDP length field, less headers and some slack).
const GSO_MAX_BYTES: usize = 65_000;

/// Largest datagram coalesced into a GSO train: it must fit a standard 1500-byte MTU so that
/// GSO never has to fail on the way out of a real NIC (the kernel rejects a segment size above
/// the path MTU).
fn gso_max_seg(v6: bool) -> usize {
    if v6 { 1500 - 48 } else { 1500 - 28 }
}

/// Consecutive datagrams to one destination that leave in one UDP GSO sendmsg(2): equal sizes
/// except a possibly shorter last one. The iovecs borrow the datagrams (`'a`).
pub(super) struct Train<'a> {
    iov: [libc::iovec; GSO_MAX_SEGS],
    n: usize,
    seg: usize,
    bytes: usize,
    closed: bool,
    max_seg: usize,
    _data: PhantomData<&'a [u8]>,
}

/// What a flush did.
#[derive(Default, Clone, Copy)]
pub(super) struct Sent {
    pub(super) packets: u64,
    pub(super) bytes: u64,
    pub(super) dropped: u64,
    /// The peer's port is unreachable (an ICMP error came back on the connected socket).
    pub(super) refused: bool,
}

impl std::ops::AddAssign for Sent {
    fn add_assign(&mut self, o: Self) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.refused |= o.refused;
    }
}

pub(super) fn is_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionRefused
}

impl<'a> Train<'a> {
    pub(super) fn new(v6: bool) -> Self {
        Self {
            // SAFETY: iovec is a plain C struct; all-zero is valid (and unused until set).
            iov: unsafe { std::mem::zeroed() },
            n: 0,
            seg: 0,
            bytes: 0,
            closed: false,
            max_seg: gso_max_seg(v6),
            _data: PhantomData,
        }
    }

    /// Add `d` if it can join this train; an empty train takes anything.
    pub(super) fn try_push(&mut self, d: &'a [u8]) -> bool {
        if self.n == 0 {
            self.seg = d.len();
            self.closed = d.len() > self.max_seg || d.is_empty();
        } else if self.closed
            || d.len() > self.seg
            || self.n == GSO_MAX_SEGS
            || self.bytes + d.len() > GSO_MAX_BYTES
        {
            return false;
        } else {
            self.closed = d.len() < self.seg;
        }
        self.iov[self.n] = libc::iovec {
            iov_base: d.as_ptr().cast_mut().cast(),
            iov_len: d.len(),
        };
        self.n += 1;
        self.bytes += d.len();
        true
    }

    /// Send the train on `fd` (to `dest`, or the connected peer) and empty it. Never waits: a
    /// full socket buffer drops the train.
    pub(super) fn flush(&mut self, fd: RawFd, dest: Option<&socket2::SockAddr>) -> Sent {
        let n = std::mem::take(&mut self.n);
        // The next train starts from zero bytes (a train that kept counting would refuse every
        // datagram after its first flush, so the rest of the batch went out one by one).
        let bytes = std::mem::take(&mut self.bytes);
        if n == 0 {
            return Sent::default();
        }
        let iov = &self.iov[..n];
        let all = Sent {
            packets: n as u64,
            bytes: bytes as u64,
            ..Sent::default()
        };
        let seg = u16::try_from(self.seg).unwrap_or(u16::MAX);
        match send_train(fd, iov, (n > 1).then_some(seg), dest) {
            Ok(()) => all,
            Err(e) if n == 1 || e.kind() == io::ErrorKind::WouldBlock || is_refused(&e) => Sent {
                dropped: n as u64,
                refused: is_refused(&e),
                ..Sent::default()
            },
            // No GSO on this path (EIO/EINVAL), or a pending ICMP error: one datagram at a time.
            Err(_) => {
                let mut s = Sent::default();
                for v in iov {
                    match send_train(fd, std::slice::from_ref(v), None, dest) {
                        Ok(()) => {
                            s.packets += 1;
                            s.bytes += v.iov_len as u64;
                        }
                        Err(e) => {
                            s.dropped += 1;
                            s.refused |= is_refused(&e);
                        }
                    }
                }
                s
            }
        }
    }
}

/// One non-blocking sendmsg(2) of `iov`, with a UDP_SEGMENT control message if `gso` is set.
fn send_train(
    fd: RawFd,
    iov: &[libc::iovec],
    gso: Option<u16>,
    dest: Option<&socket2::SockAddr>,
) -> io::Result<()> {
    // Room for one cmsghdr plus a u16 (CMSG_SPACE(2) is 24 on 64-bit targets), cmsghdr-aligned.
    #[repr(C, align(8))]
    struct Cmsg([u8; 32]);
    let mut cbuf = Cmsg([0; 32]);
    // SAFETY: msghdr is a plain C struct; all-zero is valid (no name, no control, no iovecs).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr().cast_mut();
    msg.msg_iovlen = iov.len() as _;
    if let Some(d) = dest {
        msg.msg_name = d.as_ptr().cast_mut().cast();
        msg.msg_namelen = d.len();
    }
    if let Some(seg) = gso {
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes. CMSG_FIRSTHDR returns a pointer into
        // `cbuf` (msg_controllen = CMSG_SPACE(2) <= 32 bytes, so the header and its 2 data bytes
        // are inside the buffer, which is aligned for cmsghdr); the data may be unaligned for
        // u16, hence write_unaligned.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(2) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(2) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
        }
    }
    // SAFETY: `msg` points at `iov` (whose entries point at live datagrams borrowed by the
    // caller), at `dest` and at `cbuf`, all of which outlive this non-blocking call.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_takes_equal_sizes_and_a_shorter_last_one() {
        let (a, short, big) = ([1u8; 1000], [2u8; 500], [3u8; 2000]);
        let mut t = Train::new(false);
        assert!(t.try_push(&a) && t.try_push(&a) && t.try_push(&short));
        assert!(!t.try_push(&short), "a shorter datagram ends the train");
        let mut t = Train::new(false);
        assert!(t.try_push(&short));
        assert!(!t.try_push(&a), "a longer datagram cannot follow");
        let mut t = Train::new(false);
        assert!(t.try_push(&big));
        assert!(!t.try_push(&big), "datagrams above the MTU travel alone");
        let mut t = Train::new(false);
        assert!((0..GSO_MAX_SEGS).all(|_| t.try_push(&a[..900])));
        assert!(!t.try_push(&a[..900]), "at most GSO_MAX_SEGS per train");
    }

    #[test]
    fn a_flushed_train_starts_empty() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = socket2::SockAddr::from(rx.local_addr().unwrap());
        let d = [7u8; 1200];
        let mut t = Train::new(false);
        for round in 0..3 {
            // 54 datagrams of 1200 bytes reach GSO_MAX_BYTES; the 55th needs a new train.
            assert!((0..54).all(|_| t.try_push(&d)), "round {round}");
            assert!(!t.try_push(&d));
            let sent = t.flush(tx.as_raw_fd(), Some(&dest));
            assert_eq!((sent.packets, sent.bytes), (54, 54 * 1200), "round {round}");
        }
    }

    #[test]
    fn gso_train_arrives_as_separate_datagrams_via_recvmmsg() {
        let (slots, got, data) = send_train_and_receive(false);
        assert_eq!(slots, data.len(), "one datagram per read without GRO");
        assert_eq!(got, data);
    }

    #[test]
    fn with_gro_a_train_is_one_read_and_splits_back_into_its_datagrams() {
        let (slots, got, data) = send_train_and_receive(true);
        assert_eq!(slots, 1, "the kernel coalesced the train into one read");
        assert_eq!(got, data, "same datagrams, same boundaries, same order");
    }

    /// Sends ten datagrams (nine of 1200 bytes, one of 100) as one GSO train to a socket
    /// (with GRO or not) and reads them with [`RxRing`]: (slots read, datagrams, what was sent).
    fn send_train_and_receive(gro: bool) -> (usize, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if gro {
            crate::sockets::enable_gro(&rx);
        }
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = socket2::SockAddr::from(rx.local_addr().unwrap());
        let data: Vec<Vec<u8>> = (0..10u8)
            .map(|i| vec![i; if i == 9 { 100 } else { 1200 }])
            .collect();
        let mut t = Train::new(false);
        assert!(data.iter().all(|d| t.try_push(d)));
        let sent = t.flush(tx.as_raw_fd(), Some(&dest));
        assert_eq!((sent.packets, sent.dropped), (10, 0));
        assert_eq!(sent.bytes, 9 * 1200 + 100);

        let mut ring = RxRing::new();
        let (mut got, mut slots) = (Vec::new(), 0);
        // Bounded: loopback delivery is immediate, the retries only absorb scheduling.
        for _ in 0..100 {
            if got.len() == data.len() {
                break;
            }
            match ring.recv(rx.as_raw_fd(), true) {
                Ok(n) => {
                    slots += n;
                    for i in 0..n {
                        assert_eq!(ring.addr(i), Some(tx.local_addr().unwrap()));
                        got.extend(ring.datagrams(i).map(<[u8]>::to_vec));
                    }
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        (slots, got, data)
    }

    #[test]
    fn empty_and_plain_datagrams_are_one_each() {
        let mut ring = RxRing::new();
        ring.lens[0] = 0;
        ring.lens[1] = 5;
        ring.segs[1] = 0;
        ring.lens[2] = 5;
        ring.segs[2] = 2;
        assert_eq!(ring.datagrams(0).map(<[u8]>::len).collect::<Vec<_>>(), [0]);
        assert_eq!(ring.datagrams(1).map(<[u8]>::len).collect::<Vec<_>>(), [5]);
        assert_eq!(
            ring.datagrams(2).map(<[u8]>::len).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }
}
