//! Sorting with one copy of the sort algorithm.
//!
//! `slice::sort*` is generic over the element and the comparison: every call site with
//! another type got its own copy of std's driftsort/quicksort, ~3-4 kB each, ~100 kB of the
//! binary for two dozen call sites (issue 12's size budget). These functions sort a list of
//! indices with one non-generic instance (a `dyn` comparison) and then move the elements
//! into place, so each call site adds only a few hundred bytes. Stable, O(n log n); the
//! extra index vector is one allocation of `n` words. pathman's lists are small (services,
//! rules, leases), so the indirection costs nothing measurable.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (like `slice::sort_by`).
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    sort_indices(&mut idx, &mut |a, b| cmp(&v[a], &v[b]));
    permute(v, &mut idx);
}

/// Sorts `v` by the key `f` gives, stably (like `slice::sort_by_key`).
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut f: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| f(a).cmp(&f(b)));
}

/// Sorts `v` in ascending order, stably (like `slice::sort`).
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// The one instance of std's sort.
#[inline(never)]
fn sort_indices(idx: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    idx.sort_by(|&a, &b| cmp(a, b));
}

/// Puts `v[idx[k]]` at `k` for every k, following the permutation's cycles with swaps;
/// `idx` is used up (each visited slot is set to its own index).
fn permute<T>(v: &mut [T], idx: &mut [usize]) {
    for start in 0..v.len() {
        let mut j = start;
        while idx[j] != start {
            let k = idx[j];
            v.swap(j, k);
            idx[j] = j;
            j = k;
        }
        idx[j] = j;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The same order as std's stable sort, ties included (the pairs' second field
        /// tells equal keys apart).
        #[test]
        fn same_as_std_stable_sort(v in proptest::collection::vec((0u8..8, any::<u16>()), 0..200)) {
            let mut want = v.clone();
            want.sort_by_key(|p| p.0);
            let mut got = v.clone();
            super::sort_by_key(&mut got, |p| p.0);
            prop_assert_eq!(&got, &want);
            let mut got = v.clone();
            super::sort(&mut got);
            let mut want = v;
            want.sort();
            prop_assert_eq!(got, want);
        }
    }

    /// Elements that own memory move, never copy or drop twice.
    #[test]
    fn owned_elements_move_once() {
        let mut v: Vec<String> = ["d", "b", "a", "c", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        super::sort_by(&mut v, |a, b| b.cmp(a));
        assert_eq!(v, ["d", "c", "b", "b", "a"]);
    }
}
