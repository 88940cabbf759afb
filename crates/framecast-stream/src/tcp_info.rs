//! The kernel's view of a viewer's TCP connection, for congestion control: Linux `TCP_INFO`
//! (smoothed and least round trip, bytes not yet sent). The accept loop keeps a duplicate of
//! each connection's descriptor; the viewer's writer reads a sample after each payload and
//! hands it to the stream's sans-IO core. Elsewhere, and when the call fails, there are no
//! samples and the controller works from displayed-acks alone.

use crate::session::TransportSample;
use std::sync::Arc;

/// A handle for reading one connection's `TCP_INFO` (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct TcpProbe {
    #[cfg(target_os = "linux")]
    fd: Arc<std::os::fd::OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    _none: Arc<()>,
}

impl TcpProbe {
    /// A probe for `tcp` (a duplicate descriptor of the same socket), if the platform has one.
    pub(crate) fn new(tcp: &tokio::net::TcpStream) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            let fd = tcp.as_fd().try_clone_to_owned().ok()?;
            Some(TcpProbe { fd: Arc::new(fd) })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tcp;
            None
        }
    }

    /// The connection now, or `None` when the kernel does not say.
    pub(crate) fn sample(&self) -> Option<TransportSample> {
        #[cfg(target_os = "linux")]
        {
            linux::sample(&self.fd)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::TransportSample;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// `struct tcp_info` from `<linux/tcp.h>` up to `tcpi_min_rtt` and `tcpi_notsent_bytes`
    /// (Linux 4.6+). Written out here because the `libc` crate's `tcp_info` stops before
    /// them; the kernel fills as much as the length it is given and reports how much it did.
    #[repr(C)]
    #[derive(Default)]
    struct TcpInfo {
        state: u8,
        ca_state: u8,
        retransmits: u8,
        probes: u8,
        backoff: u8,
        options: u8,
        wscale: u8,
        flags: u8,
        rto: u32,
        ato: u32,
        snd_mss: u32,
        rcv_mss: u32,
        unacked: u32,
        sacked: u32,
        lost: u32,
        retrans: u32,
        fackets: u32,
        last_data_sent: u32,
        last_ack_sent: u32,
        last_data_recv: u32,
        last_ack_recv: u32,
        pmtu: u32,
        rcv_ssthresh: u32,
        rtt: u32,
        rttvar: u32,
        snd_ssthresh: u32,
        snd_cwnd: u32,
        advmss: u32,
        reordering: u32,
        rcv_rtt: u32,
        rcv_space: u32,
        total_retrans: u32,
        pacing_rate: u64,
        max_pacing_rate: u64,
        bytes_acked: u64,
        bytes_received: u64,
        segs_out: u32,
        segs_in: u32,
        notsent_bytes: u32,
        min_rtt: u32,
    }

    pub(super) fn sample(fd: &OwnedFd) -> Option<TransportSample> {
        let mut info = TcpInfo::default();
        let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
        // SAFETY: `info` is a plain C struct of `len` bytes that outlives the call; the kernel
        // writes at most `len` bytes into it and stores the length it wrote in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        let full = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
        if rc != 0 || len < full || info.min_rtt == 0 || info.min_rtt == u32::MAX {
            return None;
        }
        Some(TransportSample {
            rtt_ms: info.rtt as f64 / 1e3,
            min_rtt_ms: info.min_rtt as f64 / 1e3,
            unsent_bytes: info.notsent_bytes as u64,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::io::{Read, Write};

        #[test]
        fn a_loopback_connection_reports_its_round_trip_and_queue() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            // Some traffic both ways so the kernel has measured a round trip.
            for _ in 0..20 {
                server.write_all(&[7u8; 1000]).unwrap();
                let mut buf = [0u8; 1000];
                client.read_exact(&mut buf).unwrap();
                client.write_all(&buf[..1]).unwrap();
                server.read_exact(&mut buf[..1]).unwrap();
            }
            let fd: OwnedFd = server.into();
            let s = sample(&fd).expect("TCP_INFO on a connected socket");
            assert!(s.min_rtt_ms > 0.0 && s.min_rtt_ms < 50.0, "{s:?}");
            assert!(s.rtt_ms >= s.min_rtt_ms * 0.5, "{s:?}");
            assert_eq!(s.unsent_bytes, 0, "everything was read: {s:?}");
        }
    }
}
