//! Seeds for the protocol machines' random numbers (SNTP cookies, DNS query
//! ids): the kernel's getrandom, so an off-path sender cannot guess them.

/// 64 random bits from the kernel; the clock's nanoseconds if getrandom is
/// unavailable (a kernel older than 3.17).
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(b);
    }
    log::warn!("getrandom failed; seeding from the clock");
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
}
