//! Per-address limits on what one client may start: sessions, names held, new rooms.
//!
//! Without them one script squatted every name a room's regulars use (3,000 sessions in
//! 4.6 s) and made 5,000 rooms in 1.4 s. Each limit refuses with a message the join form
//! shows; regular users, who join a room or two now and then, never meet them.
//!
//! The counts live in this process: in cluster mode each node limits the clients it serves.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limit that refused a join; its text is shown to the person joining.
pub use crate::protocol::pages::JoinLimit as Refusal;

/// The per-address limits.
#[derive(Debug)]
pub struct AddressLimits {
    joins: DefaultKeyedRateLimiter<IpAddr>,
    new_rooms: DefaultKeyedRateLimiter<IpAddr>,
    max_reservations: usize,
    /// How long a reservation holds its name.
    reservation: Duration,
    /// When each address's reservations still holding lapse, oldest first.
    reservations: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl AddressLimits {
    pub fn new(
        joins_per_minute: u32,
        join_burst: u32,
        max_reservations: usize,
        reservation: Duration,
        new_rooms_per_hour: u32,
    ) -> Self {
        let joins = Quota::per_minute(non_zero(joins_per_minute)).allow_burst(non_zero(join_burst));
        let rooms = Quota::per_hour(non_zero(new_rooms_per_hour));
        AddressLimits {
            joins: RateLimiter::keyed(joins),
            new_rooms: RateLimiter::keyed(rooms),
            max_reservations,
            reservation,
            reservations: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a join from `ip`: refused beyond the address's rate.
    pub fn join(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.joins.check_key(&ip).map_err(|_| Refusal::Joins)
    }

    /// Counts a new room made by `ip`: refused beyond the address's rate.
    pub fn new_room(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.new_rooms.check_key(&ip).map_err(|_| Refusal::NewRooms)
    }

    /// Counts a name reserved by `ip` for the reservation time: refused while the address
    /// already holds its most.
    pub fn reserve(&self, ip: IpAddr) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut all = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let held = all.entry(ip).or_default();
        while held.front().is_some_and(|&until| until <= now) {
            held.pop_front();
        }
        if held.len() >= self.max_reservations {
            return Err(Refusal::Reservations);
        }
        held.push_back(now + self.reservation);
        Ok(())
    }

    /// Forgets addresses with nothing left to count, so that the tables do not grow with
    /// every address ever seen.
    pub fn sweep(&self) {
        self.joins.retain_recent();
        self.joins.shrink_to_fit();
        self.new_rooms.retain_recent();
        self.new_rooms.shrink_to_fit();
        let now = Instant::now();
        let mut all = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, held| held.back().is_some_and(|&until| until > now));
        all.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn each_address_has_its_own_burst() {
        let l = AddressLimits::new(1, 3, 10, Duration::from_secs(60), 1);
        for _ in 0..3 {
            assert_eq!(l.join(ip(1)), Ok(()));
        }
        assert_eq!(l.join(ip(1)), Err(Refusal::Joins));
        assert_eq!(l.join(ip(2)), Ok(()), "another address is not affected");
        assert_eq!(l.new_room(ip(1)), Ok(()));
        assert_eq!(l.new_room(ip(1)), Err(Refusal::NewRooms));
    }

    #[test]
    fn reservations_are_held_until_they_lapse() {
        let l = AddressLimits::new(100, 100, 2, Duration::from_millis(50), 1);
        assert_eq!(l.reserve(ip(1)), Ok(()));
        assert_eq!(l.reserve(ip(1)), Ok(()));
        assert_eq!(l.reserve(ip(1)), Err(Refusal::Reservations));
        assert_eq!(l.reserve(ip(2)), Ok(()));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            l.reserve(ip(1)),
            Ok(()),
            "lapsed reservations free the address"
        );
        l.sweep();
        assert_eq!(
            l.reservations.lock().unwrap().len(),
            1,
            "address 2's lapsed reservation is forgotten"
        );
    }
}
