//! A compact binary form of a `Batch` for the ingest log (`ingest_log`): every field in
//! declaration order, integers little-endian, floats by their bits (so a value read back is
//! the value written, to the last bit), strings length-prefixed. It is only ever read by the
//! binary that wrote it or a later one, so it has no schema of its own: a log is replayed
//! at start-up, before a newer row layout could have been written after it.

use uuid::Uuid;

use super::rows::{
    label, AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
    RecommendationRow, SystemRow,
};

/// A value that cannot be read back: a torn or foreign record.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Bytes being read, front to back.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field type of a row.
pub trait Wire: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed>;
}

macro_rules! wire_number {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
wire_number!(u8, i16, i32, u32, i64, u64);

impl Wire for f64 {
    fn put(&self, out: &mut Vec<u8>) {
        self.to_bits().put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        Ok(f64::from_bits(u64::get(r)?))
    }
}

impl Wire for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        match u8::get(r)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed),
        }
    }
}

impl Wire for Uuid {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        Ok(Uuid::from_bytes(r.array()?))
    }
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    n.put(out);
    out.extend_from_slice(&s.as_bytes()[..n as usize]);
}

impl Wire for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        let n = u32::get(r)? as usize;
        String::from_utf8(r.take(n)?.to_vec()).map_err(|_| Malformed)
    }
}

impl Wire for &'static str {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        label(&String::get(r)?).ok_or(Malformed)
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.put(out);
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        match u8::get(r)? {
            0 => Ok(None),
            1 => T::get(r).map(Some),
            _ => Err(Malformed),
        }
    }
}

/// `Wire` for a row struct: its fields, in the order listed (all of them, or the struct
/// literal in `get` does not compile).
macro_rules! wire_row {
    ($($row:ident { $($field:ident),* $(,)? })*) => {$(
        impl Wire for $row {
            fn put(&self, out: &mut Vec<u8>) {
                $(self.$field.put(out);)*
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
                Ok($row { $($field: Wire::get(r)?,)* })
            }
        }
    )*};
}

wire_row! {
    PerformanceRow {
        id, user_id, session_id, route, lcp, fid, cls, fcp, ttfb, inp, user_agent,
        connection, ip, timestamp, created_at, metric_id, metric, rereport, navigation_type,
        device, path, attribution, event_time,
    }
    AiRow {
        id, request_id, endpoint, model, tokens, duration, success, error, cache_hit, user_id,
        ip, timestamp, created_at, provider, prompt_tokens, completion_tokens, ttft, cost,
        stream, demo, tokens_saved, event_time,
    }
    DatabaseRow {
        id, query, duration, rows, cached, user_id, ip, timestamp, created_at, normalized_query,
        fingerprint, request_id, route, source, event_time,
    }
    EventRow {
        id, user_id, session_id, event, properties, route, referrer, user_agent, ip, timestamp,
        created_at, visitor_id, feature, browser, os, device, referrer_domain, utm_source,
        utm_medium, utm_campaign, event_time,
    }
    ConversionRow {
        id, user_id, session_id, funnel, step, timestamp, created_at, properties, visitor_id,
        event_time,
    }
    ErrorRow {
        id, kind, message, source, line, col, stack, route, session_id, user_agent,
        fingerprint, status, timestamp, created_at,
    }
    SystemRow {
        instance, source, ts, cpu, memory, requests_per_second, p95_latency, connections,
        error_rate, load1, load5, load15, memory_used, memory_available, memory_limit,
        disk_free, disk_total, net_rx_bytes, net_tx_bytes, process_rss, process_cpu,
        process_threads, created_at,
    }
    RecommendationRow {
        created_at, fleet, current_instances, raw_desired, desired_instances, metric, value,
        target, urgency, reason,
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        u32::try_from(self.len()).unwrap_or(u32::MAX).put(out);
        self.iter().for_each(|v| v.put(out));
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        let n = u32::get(r)? as usize;
        // A length read from a torn record must not reserve gigabytes.
        let mut rows = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            rows.push(T::get(r)?);
        }
        Ok(rows)
    }
}

impl Wire for Batch {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Batch::Performance(r) => (0u8, r).put_tagged(out),
            Batch::Ai(r) => (1u8, r).put_tagged(out),
            Batch::Database(r) => (2u8, r).put_tagged(out),
            Batch::Events(r) => (3u8, r).put_tagged(out),
            Batch::Conversions(r) => (4u8, r).put_tagged(out),
            Batch::Errors(r) => (5u8, r).put_tagged(out),
            Batch::System(r) => (6u8, r).put_tagged(out),
            Batch::Recommendations(r) => (7u8, r).put_tagged(out),
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        Ok(match u8::get(r)? {
            0 => Batch::Performance(Wire::get(r)?),
            1 => Batch::Ai(Wire::get(r)?),
            2 => Batch::Database(Wire::get(r)?),
            3 => Batch::Events(Wire::get(r)?),
            4 => Batch::Conversions(Wire::get(r)?),
            5 => Batch::Errors(Wire::get(r)?),
            6 => Batch::System(Wire::get(r)?),
            7 => Batch::Recommendations(Wire::get(r)?),
            _ => return Err(Malformed),
        })
    }
}

trait Tagged {
    fn put_tagged(&self, out: &mut Vec<u8>);
}

impl<T: Wire> Tagged for (u8, &Vec<T>) {
    fn put_tagged(&self, out: &mut Vec<u8>) {
        out.push(self.0);
        self.1.put(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(b: &Batch) -> Batch {
        let mut out = Vec::new();
        b.put(&mut out);
        let mut r = Reader::new(&out);
        let back = Batch::get(&mut r).unwrap();
        assert!(r.is_empty());
        back
    }

    #[test]
    fn every_row_type_comes_back_as_written() {
        let perf = PerformanceRow {
            id: Uuid::new_v4(),
            route: Some("/r/ü".into()),
            lcp: Some(0.1 + 0.2),
            cls: Some(f64::MIN_POSITIVE),
            rereport: true,
            event_time: Some(-5),
            ..Default::default()
        };
        let back = roundtrip(&Batch::Performance(vec![perf.clone(), perf.clone()]));
        assert_eq!(
            format!("{back:?}"),
            format!("{:?}", Batch::Performance(vec![perf.clone(), perf]))
        );
        let batches = [
            Batch::Ai(vec![AiRow {
                cost: Some(1e-9),
                stream: Some(false),
                ..Default::default()
            }]),
            Batch::Database(vec![DatabaseRow {
                duration: 12.5,
                query: "SELECT 1".into(),
                ..Default::default()
            }]),
            Batch::Events(vec![EventRow {
                event: "signup".into(),
                properties: Some("{\"a\":1}".into()),
                ..Default::default()
            }]),
            Batch::Conversions(vec![ConversionRow::default()]),
            Batch::Errors(vec![ErrorRow {
                kind: "js",
                status: Some(-3),
                ..Default::default()
            }]),
            Batch::System(vec![SystemRow {
                source: "host",
                memory_limit: Some(i64::MAX),
                ..Default::default()
            }]),
            Batch::Recommendations(vec![RecommendationRow {
                fleet: "app",
                metric: Some("cpu"),
                urgency: "urgent",
                ..Default::default()
            }]),
            Batch::Events(vec![]),
        ];
        for b in &batches {
            assert_eq!(format!("{:?}", roundtrip(b)), format!("{b:?}"));
        }
    }

    #[test]
    fn a_torn_record_is_malformed_not_a_panic() {
        let mut out = Vec::new();
        Batch::Events(vec![EventRow::default(); 3]).put(&mut out);
        for cut in 0..out.len() {
            assert_eq!(
                Batch::get(&mut Reader::new(&out[..cut])).err(),
                Some(Malformed)
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Batch::get(&mut Reader::new(&bytes));
        }

        #[test]
        fn strings_and_floats_come_back_exactly(s in ".*", f in any::<f64>(), n in any::<i64>()) {
            let row = EventRow { event: s.clone(), properties: Some(s), timestamp: n, ..Default::default() };
            let perf = PerformanceRow { lcp: Some(f), ..Default::default() };
            for b in [Batch::Events(vec![row]), Batch::Performance(vec![perf])] {
                let back = roundtrip(&b);
                prop_assert_eq!(format!("{back:?}"), format!("{b:?}"));
            }
        }
    }
}
