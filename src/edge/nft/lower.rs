//! Lowers mark rules to what the `mark` chain holds. Rules are grouped by
//! shape (which fields they match, and whether any needs a range); a shape
//! with at least [`NFT_MAP_MIN_ELEMENTS`] rules becomes ONE rule doing one
//! map lookup on the concatenated fields, so the per-packet cost does not
//! grow with the number of selectors. Pure: no netlink here.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::caps::NFT_MAP_MIN_ELEMENTS;
use crate::core::firewall::{Family, FlowMatch, MarkRule, Match};

/// Something a rule loads into a register and compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Field {
    /// `meta nfproto`, 1 byte.
    NfProto,
    /// `meta skuid`, host-endian u32.
    Uid,
    /// `meta skgid`, host-endian u32.
    Gid,
    /// `ip saddr` / `ip6 saddr`.
    Saddr(Family),
    /// `ip daddr` / `ip6 daddr`.
    Daddr(Family),
    /// `meta l4proto`, 1 byte.
    L4Proto,
    /// `th sport`, big-endian u16.
    Sport,
    /// `th dport`, big-endian u16.
    Dport,
}

impl Field {
    /// Bytes the load writes.
    pub(super) fn len(self) -> usize {
        match self {
            Field::NfProto | Field::L4Proto => 1,
            Field::Sport | Field::Dport => 2,
            Field::Uid | Field::Gid => 4,
            Field::Saddr(f) | Field::Daddr(f) => usize::from(f.bits() / 8),
        }
    }

    /// Register space it takes in a concatenation: 32-bit registers.
    pub(super) fn padded_len(self) -> usize {
        self.len().next_multiple_of(4)
    }
}

/// "`field` is within `lo..=hi`", values in the byte layout of the register
/// after the load (network order for addresses and ports).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Term {
    pub field: Field,
    pub lo: Vec<u8>,
    pub hi: Vec<u8>,
}

impl Term {
    fn exact(field: Field, v: Vec<u8>) -> Term {
        Term {
            field,
            hi: v.clone(),
            lo: v,
        }
    }

    /// Whether the term is a single value.
    pub(super) fn is_exact(&self) -> bool {
        self.lo == self.hi
    }
}

/// One piece of the `mark` chain, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// One rule: all terms, then `meta mark set mark accept`.
    Rule { terms: Vec<Term>, mark: u32 },
    /// One rule `meta mark set <fields> map @set accept` plus the map.
    /// `elems` never overlap (the kernel refuses overlapping intervals).
    Map {
        fields: Vec<Field>,
        interval: bool,
        elems: Vec<(Vec<Term>, u32)>,
    },
}

/// `meta nfproto` value of a family.
pub(super) fn nfproto(f: Family) -> u8 {
    match f {
        Family::V4 => libc::NFPROTO_IPV4 as u8,
        Family::V6 => libc::NFPROTO_IPV6 as u8,
    }
}

/// An address in network byte order.
pub(super) fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The address range of a prefix: host bits cleared / set.
fn prefix(field: Field, a: &IpAddr, len: u8) -> Term {
    let mut lo = octets(a);
    let mut hi = lo.clone();
    for (i, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let bits = usize::from(len).saturating_sub(i * 8).min(8);
        let mask = (0xff00u16 >> bits) as u8;
        *l &= mask;
        *h |= !mask;
    }
    Term { field, lo, hi }
}

fn ports(field: Field, (lo, hi): (u16, u16)) -> Term {
    Term {
        field,
        lo: lo.to_be_bytes().to_vec(),
        hi: hi.to_be_bytes().to_vec(),
    }
}

fn flow_terms(f: &FlowMatch) -> Vec<Term> {
    let mut t = Vec::new();
    if let Some(uid) = f.uid {
        t.push(Term::exact(Field::Uid, uid.to_ne_bytes().to_vec()));
    }
    let fam = f.effective_family();
    if let Some(fam) = fam {
        t.push(Term::exact(Field::NfProto, vec![nfproto(fam)]));
    }
    for (side, mk) in [
        (f.src, Field::Saddr as fn(Family) -> Field),
        (f.dst, Field::Daddr),
    ] {
        // A /0 matches every address of the family: the nfproto term says all.
        if let Some((a, len)) = side.filter(|(_, len)| *len > 0) {
            t.push(prefix(mk(Family::of(&a)), &a, len));
        }
    }
    if let Some(p) = f.proto {
        t.push(Term::exact(Field::L4Proto, vec![p]));
    }
    if let Some(p) = f.sport {
        t.push(ports(Field::Sport, p));
    }
    if let Some(p) = f.dport {
        t.push(ports(Field::Dport, p));
    }
    t
}

/// The terms of one match, in load order (family and protocol before the
/// fields that depend on them).
pub(super) fn terms(m: &Match) -> Vec<Term> {
    match m {
        Match::Uid(u) => vec![Term::exact(Field::Uid, u.to_ne_bytes().to_vec())],
        Match::Gid(g) => vec![Term::exact(Field::Gid, g.to_ne_bytes().to_vec())],
        Match::Saddr(a) => {
            let fam = Family::of(a);
            vec![
                Term::exact(Field::NfProto, vec![nfproto(fam)]),
                Term::exact(Field::Saddr(fam), octets(a)),
            ]
        }
        Match::Flow(f) => flow_terms(f),
    }
}

fn overlaps(a: &[Term], b: &[Term]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.lo <= y.hi && y.lo <= x.hi)
}

/// Groups `marks` by shape, in order of first appearance, and turns each
/// group into plain rules or one map. A shape is the kind of match and the
/// fields it loads (as [`MarkRule`] defines it), not whether a member needs
/// a range: splitting exact members from ranges would reorder them. A map
/// is consulted before the plain rules of its group, so a member goes
/// behind it when it overlaps an element or a member already behind:
/// either of those comes first in the list and must win.
pub(super) fn lower(marks: &[MarkRule]) -> Vec<Step> {
    type Shape = (std::mem::Discriminant<Match>, Vec<Field>);
    type Members = Vec<(Vec<Term>, u32)>;
    let mut groups: Vec<(Shape, Members)> = Vec::new();
    for r in marks {
        let t = terms(&r.m);
        let shape = (
            std::mem::discriminant(&r.m),
            t.iter().map(|t| t.field).collect::<Vec<_>>(),
        );
        match groups.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, members)) => members.push((t, r.mark)),
            None => groups.push((shape, vec![(t, r.mark)])),
        }
    }
    let mut steps = Vec::new();
    for ((_, fields), members) in groups {
        if fields.is_empty() || members.len() < NFT_MAP_MIN_ELEMENTS {
            steps.extend(
                members
                    .into_iter()
                    .map(|(terms, mark)| Step::Rule { terms, mark }),
            );
            continue;
        }
        let interval = members.iter().flat_map(|(t, _)| t).any(|t| !t.is_exact());
        let mut elems: Vec<(Vec<Term>, u32)> = Vec::new();
        let mut behind: Vec<(Vec<Term>, u32)> = Vec::new();
        let mut seen = HashSet::new();
        for (t, mark) in members {
            let clash = if interval {
                elems.iter().chain(&behind).any(|(e, _)| overlaps(e, &t))
            } else {
                // Exact members overlap only when equal, and an equal one
                // behind the map has its twin in the map.
                !seen.insert(t.clone())
            };
            if clash {
                behind.push((t, mark));
            } else {
                elems.push((t, mark));
            }
        }
        steps.push(Step::Map {
            fields,
            interval,
            elems,
        });
        steps.extend(
            behind
                .into_iter()
                .map(|(terms, mark)| Step::Rule { terms, mark }),
        );
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A probe packet: IPv4, UDP, the fields the generated rules load.
    #[derive(Debug, Clone, Copy)]
    struct Packet {
        src: [u8; 4],
        dst: [u8; 4],
        dport: u16,
    }

    impl Packet {
        fn value(&self, f: Field) -> Option<Vec<u8>> {
            match f {
                Field::NfProto => Some(vec![libc::NFPROTO_IPV4 as u8]),
                Field::L4Proto => Some(vec![17]),
                Field::Saddr(Family::V4) => Some(self.src.to_vec()),
                Field::Daddr(Family::V4) => Some(self.dst.to_vec()),
                Field::Dport => Some(self.dport.to_be_bytes().to_vec()),
                _ => None,
            }
        }

        fn matches(&self, terms: &[Term]) -> bool {
            terms
                .iter()
                .all(|t| self.value(t.field).is_some_and(|v| t.lo <= v && v <= t.hi))
        }
    }

    /// First match over `marks` as [`MarkRule`] defines it: shapes in
    /// order of first appearance, each shape's rules as given.
    fn first_match(marks: &[MarkRule], p: &Packet) -> Option<u32> {
        let shape = |r: &MarkRule| {
            (
                std::mem::discriminant(&r.m),
                terms(&r.m).iter().map(|t| t.field).collect::<Vec<_>>(),
            )
        };
        let mut order: Vec<(usize, &MarkRule)> = Vec::new();
        for r in marks {
            let first = marks.iter().position(|q| shape(q) == shape(r));
            order.push((first.unwrap_or(0), r));
        }
        crate::sort::sort_by_key(&mut order, |(first, _)| *first);
        order
            .into_iter()
            .find(|(_, r)| p.matches(&terms(&r.m)))
            .map(|(_, r)| r.mark)
    }

    /// What the chain does with `steps`: each map lookup or rule in order.
    fn eval(steps: &[Step], p: &Packet) -> Option<u32> {
        steps.iter().find_map(|s| match s {
            Step::Rule { terms, mark } => p.matches(terms).then_some(*mark),
            Step::Map { elems, .. } => elems
                .iter()
                .find(|(terms, _)| p.matches(terms))
                .map(|(_, mark)| *mark),
        })
    }

    /// One generated rule: `kind` picks the shape, the rest its values.
    fn rule(i: usize, (kind, a, b, len, lo, w): (u8, u8, u8, u8, u16, u16)) -> MarkRule {
        let net = |a, b| (IpAddr::from([10, a, b, 0]), len);
        let mark = i as u32 + 1;
        let flow = |f| MarkRule {
            mark,
            m: Match::Flow(f),
        };
        match kind {
            0 => dport(mark, lo, lo + w),
            1 => flow(FlowMatch {
                dst: Some(net(a, b)),
                ..Default::default()
            }),
            2 => flow(FlowMatch {
                dst: Some(net(a, b)),
                proto: Some(17),
                dport: Some((lo, lo + w)),
                ..Default::default()
            }),
            3 => flow(FlowMatch {
                src: Some(net(a, b)),
                ..Default::default()
            }),
            _ => MarkRule {
                mark,
                m: Match::Saddr(IpAddr::from([10, a, b, 0])),
            },
        }
    }

    proptest! {
        /// Every rule lands exactly once (in a map or as a rule), map
        /// elements never overlap, and every probe packet gets the mark of
        /// the rule that matches it first.
        #[test]
        fn lowering_keeps_first_match(
            specs in proptest::collection::vec(
                (0u8..5, 0u8..3, 0u8..3, prop::sample::select(vec![8u8, 16, 24, 32]), 0u16..50, 0u16..5),
                0..40,
            ),
            probes in proptest::collection::vec(
                ((0u8..4, 0u8..4), (0u8..4, 0u8..4), 0u16..56),
                1..20,
            ),
        ) {
            let marks: Vec<_> = specs.iter().enumerate().map(|(i, s)| rule(i, *s)).collect();
            let steps = lower(&marks);
            let mut placed = 0;
            for s in &steps {
                match s {
                    Step::Rule { .. } => placed += 1,
                    Step::Map { elems, .. } => {
                        for (i, (a, _)) in elems.iter().enumerate() {
                            for (b, _) in &elems[i + 1..] {
                                prop_assert!(!overlaps(a, b));
                            }
                        }
                        placed += elems.len();
                    }
                }
            }
            prop_assert_eq!(placed, marks.len());
            for ((sa, sb), (da, db), port) in probes {
                let p = Packet {
                    src: [10, sa, sb, 0],
                    dst: [10, da, db, 0],
                    dport: port,
                };
                prop_assert_eq!(eval(&steps, &p), first_match(&marks, &p), "{:?}", p);
            }
        }
    }

    fn dport(mark: u32, lo: u16, hi: u16) -> MarkRule {
        MarkRule {
            mark,
            m: Match::Flow(FlowMatch {
                proto: Some(17),
                dport: Some((lo, hi)),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn prefix_range() {
        let t = prefix(Field::Daddr(Family::V4), &"10.1.2.3".parse().unwrap(), 12);
        assert_eq!(t.lo, [10, 0, 0, 0]);
        assert_eq!(t.hi, [10, 15, 255, 255]);
        let t = prefix(Field::Daddr(Family::V4), &"10.1.2.3".parse().unwrap(), 32);
        assert!(t.is_exact());
    }

    #[test]
    fn few_rules_stay_rules_many_become_one_map() {
        let few: Vec<_> = (0..3).map(|i| dport(1, 1000 + i, 1000 + i)).collect();
        assert!(lower(&few).iter().all(|s| matches!(s, Step::Rule { .. })));
        let many: Vec<_> = (0..100)
            .map(|i| dport(1 + u32::from(i % 7), 1000 + i, 1000 + i))
            .collect();
        let steps = lower(&many);
        assert_eq!(steps.len(), 1);
        match &steps[0] {
            Step::Map {
                fields,
                interval,
                elems,
            } => {
                assert_eq!(fields, &[Field::L4Proto, Field::Dport]);
                assert!(!interval);
                assert_eq!(elems.len(), 100);
            }
            s => panic!("expected a map, got {s:?}"),
        }
    }

    #[test]
    fn overlapping_intervals_fall_back_behind_the_map() {
        let net = |mark, a: &str, len| MarkRule {
            mark,
            m: Match::Flow(FlowMatch {
                dst: Some((a.parse().unwrap(), len)),
                ..Default::default()
            }),
        };
        let rules = [
            net(1, "10.0.0.0", 8),
            net(2, "10.1.0.0", 16),
            net(3, "192.168.0.0", 16),
            net(4, "172.16.0.0", 12),
            net(5, "100.64.0.0", 10),
        ];
        let steps = lower(&rules);
        assert_eq!(steps.len(), 2);
        assert!(matches!(&steps[0], Step::Map { interval: true, elems, .. } if elems.len() == 4));
        assert!(matches!(&steps[1], Step::Rule { mark: 2, .. }));
    }

    /// m2 overlaps m1 and goes behind the map; m3 overlaps only m2, so it
    /// must go behind too, or the map would answer before m2 is tried.
    #[test]
    fn a_rule_overlapping_one_behind_the_map_goes_behind_it() {
        let net = |mark, a: &str, len| MarkRule {
            mark,
            m: Match::Flow(FlowMatch {
                dst: Some((a.parse().unwrap(), len)),
                ..Default::default()
            }),
        };
        let rules = [
            net(1, "10.0.0.0", 16),
            net(2, "10.0.0.0", 8),
            net(3, "10.1.0.0", 16),
            net(4, "192.168.0.0", 16),
            net(5, "172.16.0.0", 16),
        ];
        let steps = lower(&rules);
        let p = Packet {
            src: [0; 4],
            dst: [10, 1, 2, 3],
            dport: 9,
        };
        assert_eq!(eval(&steps, &p), Some(2));
        assert!(matches!(&steps[0], Step::Map { interval: true, elems, .. } if elems.len() == 3));
        assert!(matches!(&steps[1], Step::Rule { mark: 2, .. }));
        assert!(matches!(&steps[2], Step::Rule { mark: 3, .. }));
    }

    /// An exact port and a range of one shape share a group: split into
    /// an exact map and a range rule, port 86 would get 3 instead of 2.
    #[test]
    fn exact_and_range_members_keep_their_order() {
        let rules = [
            dport(1, 85, 85),
            dport(2, 80, 90),
            dport(3, 86, 86),
            dport(4, 9001, 9001),
            dport(5, 9002, 9002),
        ];
        let steps = lower(&rules);
        let p = |port| Packet {
            src: [0; 4],
            dst: [0; 4],
            dport: port,
        };
        assert_eq!(eval(&steps, &p(86)), Some(2));
        assert_eq!(eval(&steps, &p(85)), Some(1));
        assert_eq!(eval(&steps, &p(9002)), Some(5));
    }
}
