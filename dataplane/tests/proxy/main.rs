//! Black-box tests of the proxy over real sockets on 127.0.0.1 (every socket binds port 0).

mod changes;
mod health;
mod quic;
mod tcp;
mod tls;
mod udp;
mod upgrade;
mod util;
