//! Fuzz what a station sends the gateway's TLS station listener (the embedded broker's only door for stations):
//! MQTT 3.1.1 packets read with the codec the listener uses (rumqttc's, with a size limit), then the topic rights
//! the listener enforces on each (`station::may_publish`, `may_subscribe`, `session_client_id`). Beyond not
//! panicking, the rights must never let a station publish on, or subscribe to, another station's topics, nor
//! share another station's broker session.
#![no_main]

use bytes::BytesMut;
use hotspot_device_protocols::station::{
    GATEWAY_STATUS_TOPIC, MAX_CAPTURE_BYTES, StationTopic, may_publish, may_subscribe,
    parse_station_topic, results_topic, session_client_id,
};
use libfuzzer_sys::fuzz_target;
use rumqttc::Packet;

/// Stations the packets are read for: one whose id is a prefix of the other's, and one with a dot.
const STATIONS: [&str; 3] = ["desk-1", "desk-10", "gate.b"];

fuzz_target!(|data: &[u8]| {
    let Some((&who, bytes)) = data.split_first() else {
        return;
    };
    let id = STATIONS[usize::from(who) % STATIONS.len()];
    let mut buf = BytesMut::from(bytes);
    // As the listener reads: packet after packet until one is incomplete or malformed (which ends the connection).
    while let Ok(packet) = Packet::read(&mut buf, MAX_CAPTURE_BYTES + 64 * 1024) {
        match packet {
            Packet::Publish(p) => {
                if may_publish(id, &p.topic) {
                    let own = match parse_station_topic(&p.topic) {
                        Ok(StationTopic::Captures(s) | StationTopic::Vendor(s, _) | StationTopic::Status(s)) => s,
                        other => panic!("{id} may publish on {:?}: {other:?}", p.topic),
                    };
                    assert_eq!(own, id);
                    for other in STATIONS.iter().filter(|o| **o != id) {
                        assert!(!may_publish(other, &p.topic), "{id} and {other}: {}", p.topic);
                    }
                }
            }
            Packet::Subscribe(s) => {
                for f in &s.filters {
                    if may_subscribe(id, &f.path) {
                        assert!(f.path == results_topic(id) || f.path == GATEWAY_STATUS_TOPIC, "{}", f.path);
                        assert!(!f.path.contains(['+', '#']), "{}", f.path);
                    }
                }
            }
            Packet::Connect(c) => {
                let session = session_client_id(id, &c.client_id);
                assert!(session.is_empty() || session.split_once(':').map(|(s, _)| s) == Some(id));
                for other in STATIONS.iter().filter(|o| **o != id) {
                    assert!(session.is_empty() || session != session_client_id(other, &c.client_id));
                }
            }
            _ => {}
        }
    }
});
