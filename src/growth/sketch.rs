//! HyperLogLog: a mergeable estimate of distinct people (or sessions) per roll-up bucket.
//! Registers merge by maximum, so the sketch of a range is the same whether it is built
//! from the raw events or merged from the buckets' sketches: roll-up and raw reads agree
//! exactly. The estimate is Ertl's improved estimator ("New cardinality estimation
//! algorithms for HyperLogLog sketches", 2017): no bias tables, a relative standard error
//! of about 1.04 / sqrt(2^p) over the whole range, and near exact for small counts.

/// Precision of the totals (people and sessions of a range): 16,384 registers, 0.81 %.
pub const P_TOTAL: u8 = 14;
/// Precision per breakdown value (event, route, source, browser, ...): 4,096 registers, 1.6 %.
pub const P_VALUE: u8 = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    p: u8,
    regs: Vec<u8>,
}

impl Hll {
    pub fn new(p: u8) -> Hll {
        Hll {
            p,
            regs: vec![0; 1 << p],
        }
    }

    /// Adds a 64-bit hash (DuckDB's `hash()` of the id): the top `p` bits pick the register,
    /// the rest give the rank (leading zeros + 1).
    #[inline]
    pub fn add(&mut self, h: u64) {
        let i = (h >> (64 - self.p)) as usize;
        let w = h << self.p;
        let q = 64 - u32::from(self.p);
        let rank = (w.leading_zeros() + 1).min(q + 1) as u8;
        if let Some(r) = self.regs.get_mut(i) {
            if *r < rank {
                *r = rank;
            }
        }
    }

    /// Takes in another sketch of the same precision (a different one is ignored).
    pub fn merge(&mut self, other: &Hll) {
        if other.p != self.p {
            return;
        }
        for (a, b) in self.regs.iter_mut().zip(&other.regs) {
            if *a < *b {
                *a = *b;
            }
        }
    }

    /// The stored form: the precision, then one byte per register.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.regs.len() + 1);
        v.push(self.p);
        v.extend_from_slice(&self.regs);
        v
    }

    /// Reads the stored form; None when it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<Hll> {
        let (&p, regs) = b.split_first()?;
        ((4..=18).contains(&p) && regs.len() == 1 << p).then(|| Hll {
            p,
            regs: regs.to_vec(),
        })
    }

    /// Merges a stored sketch into this one without building it first.
    pub fn merge_bytes(&mut self, b: &[u8]) {
        match b.split_first() {
            Some((&p, regs)) if p == self.p && regs.len() == self.regs.len() => {
                for (a, b) in self.regs.iter_mut().zip(regs) {
                    if *a < *b {
                        *a = *b;
                    }
                }
            }
            _ => {}
        }
    }

    /// The estimated number of distinct hashes added, rounded.
    pub fn estimate(&self) -> u64 {
        let m = self.regs.len() as f64;
        let q = 64 - usize::from(self.p);
        let mut c = vec![0u64; q + 2];
        for &r in &self.regs {
            c[usize::from(r).min(q + 1)] += 1;
        }
        if c[0] == self.regs.len() as u64 {
            return 0;
        }
        let mut z = m * tau(1.0 - c[q + 1] as f64 / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + c[k] as f64);
        }
        z += m * sigma(c[0] as f64 / m);
        let alpha = 0.5 / std::f64::consts::LN_2;
        (alpha * m * m / z).round() as u64
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: well-spread 64-bit values standing in for DuckDB's hash().
    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    #[test]
    fn small_counts_near_exact_and_large_within_bound() {
        for p in [P_VALUE, P_TOTAL] {
            let mut h = Hll::new(p);
            assert_eq!(h.estimate(), 0);
            for n in 1..=200u64 {
                h.add(mix(n));
                h.add(mix(n)); // duplicates change nothing
                let err = h.estimate().abs_diff(n);
                assert!(err <= 1 + n / 33, "p={p} n={n} est={}", h.estimate());
            }
            let se = 1.04 / f64::from(1u32 << p).sqrt();
            for n in [5_000u64, 50_000, 300_000] {
                let mut h = Hll::new(p);
                for i in 0..n {
                    h.add(mix(i + 1_000_000 * u64::from(p)));
                }
                let err = (h.estimate() as f64 - n as f64).abs() / n as f64;
                assert!(err < 4.0 * se, "p={p} n={n} err={err}");
            }
        }
    }

    #[test]
    fn merge_is_the_sketch_of_the_union() {
        let (mut a, mut b, mut all) = (Hll::new(12), Hll::new(12), Hll::new(12));
        for i in 0..30_000u64 {
            let x = mix(i);
            if i % 3 == 0 {
                a.add(x)
            } else {
                b.add(x)
            }
            all.add(x);
        }
        let mut m = a.clone();
        m.merge_bytes(&b.to_bytes());
        assert_eq!(m, all);
        assert_eq!(Hll::from_bytes(&all.to_bytes()), Some(all.clone()));
        assert_eq!(Hll::from_bytes(&[12, 0]), None);
        a.merge(&b);
        assert_eq!(a, all);
    }
}
