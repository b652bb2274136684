//! An in-process UDP proxy that degrades a link the way border-post uplinks degrade: one-way delay, random loss,
//! a rate limit with a bounded queue, and blackouts. Packet order is kept (a FIFO per direction), as netem does
//! without reordering; Linux netem itself is not available on these machines.
//!
//! `client -> [listen] proxy [upstream socket] -> server`, and back the same way. One client at a time (the last
//! address seen), which is what a QUIC connection from one gateway is.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How the link behaves; change it at any time through [`UdpProxy::set`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinkProfile {
    /// One-way delay added to every packet (RTT is twice this).
    pub delay: Duration,
    /// Probability that a packet is dropped, per direction.
    pub loss: f64,
    /// Bits per second per direction; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Queue limit in bytes per direction when rate-limited (tail drop beyond it).
    pub queue_bytes: usize,
    /// Drop everything.
    pub blackout: bool,
}

impl Default for LinkProfile {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            loss: 0.0,
            rate_bps: None,
            queue_bytes: 256 * 1024,
            blackout: false,
        }
    }
}

/// Per-direction counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Packets offered.
    pub offered: u64,
    /// Packets delivered.
    pub delivered: u64,
    /// Bytes delivered.
    pub delivered_bytes: u64,
    /// Packets dropped (loss, blackout, queue).
    pub dropped: u64,
}

/// Packets waiting to leave, in order, with the time each leaves.
struct Queue {
    packets: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
    last_departure: Instant,
}

struct Direction {
    queue: Mutex<Queue>,
    notify: Notify,
    counters: Mutex<Counters>,
}

impl Direction {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                packets: VecDeque::new(),
                bytes: 0,
                last_departure: Instant::now(),
            }),
            notify: Notify::new(),
            counters: Mutex::new(Counters::default()),
        })
    }

    /// Decides the packet's fate and departure time; keeps FIFO order.
    fn offer(&self, p: &LinkProfile, packet: Vec<u8>) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.offered += 1;
        let lost = p.blackout || (p.loss > 0.0 && rand::rng().random_bool(p.loss.min(1.0)));
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if lost || (p.rate_bps.is_some() && q.bytes + packet.len() > p.queue_bytes) {
            c.dropped += 1;
            return;
        }
        let now = Instant::now();
        let serialise = p.rate_bps.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(packet.len() as f64 * 8.0 / r as f64)
        });
        // Leaves the bottleneck after the previous packet has, then travels `delay`.
        let leave = q.last_departure.max(now) + serialise;
        q.last_departure = leave;
        q.bytes += packet.len();
        q.packets.push_back((leave + p.delay, packet));
        drop(q);
        self.notify.notify_one();
    }

    async fn pump(self: Arc<Self>, socket: Arc<UdpSocket>, to: Arc<Mutex<Option<SocketAddr>>>) {
        loop {
            let next = {
                let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.packets.front().map(|(t, _)| *t)
            };
            let Some(at) = next else {
                self.notify.notified().await;
                continue;
            };
            tokio::time::sleep_until(at).await;
            let item = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                let item = q.packets.pop_front();
                if let Some((_, p)) = &item {
                    q.bytes -= p.len();
                }
                item
            };
            let dest = *to.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some((_, packet)), Some(dest)) = (item, dest)
                && socket.send_to(&packet, dest).await.is_ok()
            {
                let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
                c.delivered += 1;
                c.delivered_bytes += packet.len() as u64;
            }
        }
    }
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct UdpProxy {
    /// Where clients send (the gateway's `uplink.central`).
    pub listen: SocketAddr,
    profile: Arc<Mutex<LinkProfile>>,
    up: Arc<Direction>,
    down: Arc<Direction>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direction")
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl UdpProxy {
    /// Starts a proxy on `127.0.0.1:listen_port` (0: any) towards `upstream`.
    pub async fn start(
        listen_port: u16,
        upstream: SocketAddr,
        profile: LinkProfile,
    ) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind(("127.0.0.1", listen_port)).await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let listen = front.local_addr()?;
        let profile = Arc::new(Mutex::new(profile));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let server = Arc::new(Mutex::new(Some(upstream)));
        let (up, down) = (Direction::new(), Direction::new());
        let mut tasks = vec![
            tokio::spawn(up.clone().pump(back.clone(), server)),
            tokio::spawn(down.clone().pump(front.clone(), client.clone())),
        ];
        let (p, u, f) = (profile.clone(), up.clone(), front.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = f.recv_from(&mut buf).await {
                *client.lock().unwrap_or_else(|e| e.into_inner()) = Some(from);
                let prof = p.lock().unwrap_or_else(|e| e.into_inner()).clone();
                u.offer(&prof, buf[..n].to_vec());
            }
        }));
        let (p, d) = (profile.clone(), down.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, _)) = back.recv_from(&mut buf).await {
                let prof = p.lock().unwrap_or_else(|e| e.into_inner()).clone();
                d.offer(&prof, buf[..n].to_vec());
            }
        }));
        Ok(Self {
            listen,
            profile,
            up,
            down,
            tasks,
        })
    }

    /// Changes the link's behaviour from now on.
    pub fn set(&self, f: impl FnOnce(&mut LinkProfile)) {
        f(&mut self.profile.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Counters (client -> server, server -> client).
    pub fn counters(&self) -> (Counters, Counters) {
        let get = |d: &Direction| *d.counters.lock().unwrap_or_else(|e| e.into_inner());
        (get(&self.up), get(&self.down))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(&buf[..n], from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn delays_keeps_order_and_blacks_out() {
        let server = echo_server().await;
        let profile = LinkProfile {
            delay: Duration::from_millis(40),
            ..LinkProfile::default()
        };
        let proxy = UdpProxy::start(0, server, profile).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = Instant::now();
        for i in 0u8..20 {
            c.send_to(&[i], proxy.listen).await.unwrap();
        }
        let mut buf = [0u8; 16];
        for i in 0u8..20 {
            let (n, _) = c.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i], "order kept");
        }
        assert!(
            start.elapsed() >= Duration::from_millis(80),
            "two one-way delays"
        );
        proxy.set(|p| p.blackout = true);
        c.send_to(&[99], proxy.listen).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(300), c.recv_from(&mut buf)).await;
        assert!(got.is_err(), "nothing crosses a blackout");
        assert_eq!(proxy.counters().0.dropped, 1);
    }

    #[tokio::test]
    async fn rate_limit_spaces_packets() {
        let server = echo_server().await;
        // 80 kbit/s: a 1000-byte packet takes 100 ms to serialise.
        let profile = LinkProfile {
            rate_bps: Some(80_000),
            ..LinkProfile::default()
        };
        let proxy = UdpProxy::start(0, server, profile).await.unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = Instant::now();
        for _ in 0..5 {
            c.send_to(&[0u8; 1000], proxy.listen).await.unwrap();
        }
        let mut buf = [0u8; 2048];
        for _ in 0..5 {
            c.recv_from(&mut buf).await.unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    }
}
