//! Encoder tiers: viewers that share an encoder but not a link. A group encodes at the rate
//! of its slowest member, so one viewer on a slow link would drag everyone down; instead it
//! moves to a lower tier (a group of its own, or an existing group near its rate), and back
//! up once its link sustains a higher group's rate. Pure decisions over a view of the
//! groups; [`super::StreamCore`] applies them after they have held for [`TIER_HOLD`].

use super::ids::GroupId;
use std::time::Duration;

/// At most this many video groups (tiers) per stream.
pub const MAX_TIERS: usize = 3;
/// A viewer whose target is below this share of its group's best member's target leaves
/// for a lower tier.
pub const SPLIT: f64 = 0.6;
/// A viewer whose target reaches this share of a higher group's rate joins it.
pub const MERGE: f64 = 0.9;
/// Content whose frames take less than this share of its group's rate is light (a still or
/// a simple picture); rate control alone undershoots by far less.
pub const LIGHT: f64 = 0.5;
/// In a group with light content, a viewer whose link sustains this multiple of what the
/// frames actually take keeps up whatever its target: it does not split off.
pub const KEEPS_UP: f64 = 1.25;
/// How long a wish to move must hold before the move (each costs the mover a keyframe).
pub const TIER_HOLD: Duration = Duration::from_secs(2);

/// One video group as the tier logic sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupView {
    /// The group.
    pub id: GroupId,
    /// The bitrate it encodes at.
    pub rate: u32,
    /// The best target among its members.
    pub peak: u32,
    /// Members.
    pub members: usize,
    /// Bits/s its frames actually took over the last second (at most `rate`, far less for
    /// simple content).
    pub used: u32,
}

/// Where a viewer should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Into this existing group.
    Join(GroupId),
    /// Into a new group of its own.
    New,
}

/// Where a viewer in group `own` whose link sustains `target` bits/s belongs, if elsewhere.
pub fn desired(own: GroupId, target: u32, groups: &[GroupView]) -> Option<Dest> {
    let mine = groups.iter().find(|g| g.id == own)?;
    let target = target as f64;
    let others = || groups.iter().filter(move |g| g.id != own);
    let used = mine.used as f64;
    let keeps_up = used < LIGHT * mine.rate as f64 && target >= KEEPS_UP * used;
    if mine.members > 1 && target < SPLIT * mine.peak as f64 && !keeps_up {
        // Down: the best group it can sustain that is not far below it, else a new tier.
        let near = others()
            .filter(|g| g.rate as f64 <= target * 1.1 && g.rate as f64 >= target * 0.5)
            .max_by_key(|g| g.rate);
        return match near {
            Some(g) => Some(Dest::Join(g.id)),
            None if groups.len() < MAX_TIERS => Some(Dest::New),
            None => others()
                .filter(|g| g.rate < mine.rate)
                .min_by_key(|g| g.rate)
                .map(|g| Dest::Join(g.id)),
        };
    }
    // Up: the best higher group whose rate it sustains (of two at one rate, the older).
    others()
        .filter(|g| (g.rate, std::cmp::Reverse(g.id)) > (mine.rate, std::cmp::Reverse(own)))
        .filter(|g| target >= MERGE * g.rate as f64)
        .max_by_key(|g| g.rate)
        .map(|g| Dest::Join(g.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group whose content takes its whole rate.
    fn g(id: GroupId, rate: u32, peak: u32, members: usize) -> GroupView {
        GroupView {
            id,
            rate,
            peak,
            members,
            used: rate,
        }
    }

    #[test]
    fn a_slow_member_splits_off_and_a_lone_one_stays() {
        let groups = [g(1, 2_000_000, 8_000_000, 2)];
        assert_eq!(desired(1, 2_000_000, &groups), Some(Dest::New));
        assert_eq!(desired(1, 8_000_000, &groups), None);
        let alone = [g(1, 2_000_000, 2_000_000, 1)];
        assert_eq!(desired(1, 2_000_000, &alone), None);
    }

    #[test]
    fn a_member_whose_link_carries_what_the_content_takes_stays() {
        // The encoder may spend 8 Mb/s but this picture takes 70 kb/s: a viewer whose link
        // sustains 2 Mb/s keeps up and would only pay a keyframe for moving.
        let simple = [GroupView {
            used: 70_000,
            ..g(1, 8_000_000, 8_000_000, 2)
        }];
        assert_eq!(desired(1, 2_000_000, &simple), None);
        let heavy = [GroupView {
            used: 7_500_000,
            ..g(1, 8_000_000, 8_000_000, 2)
        }];
        assert_eq!(desired(1, 2_000_000, &heavy), Some(Dest::New));
        // A group already down at a slow member's rate, its rate control undershooting: the
        // slow member still leaves (or the fast one would stay at its rate).
        let dragged = [GroupView {
            used: 2_100_000,
            ..g(1, 2_800_000, 8_000_000, 2)
        }];
        assert_eq!(desired(1, 2_800_000, &dragged), Some(Dest::New));
    }

    #[test]
    fn a_slow_member_joins_a_near_lower_tier_and_tiers_stay_few() {
        let groups = [g(1, 8_000_000, 8_000_000, 3), g(2, 3_000_000, 3_000_000, 1)];
        assert_eq!(desired(1, 3_100_000, &groups), Some(Dest::Join(2)));
        let full = [
            g(1, 8_000_000, 8_000_000, 3),
            g(2, 5_000_000, 5_000_000, 1),
            g(3, 3_000_000, 3_000_000, 1),
        ];
        // Nothing near 1 Mb/s and no room for a fourth tier: the lowest.
        assert_eq!(desired(1, 1_000_000, &full), Some(Dest::Join(3)));
    }

    #[test]
    fn a_recovered_viewer_moves_up_only_when_it_sustains_the_higher_rate() {
        let groups = [g(1, 8_000_000, 8_000_000, 2), g(2, 3_000_000, 7_000_000, 1)];
        assert_eq!(desired(2, 7_000_000, &groups), None);
        assert_eq!(desired(2, 7_300_000, &groups), Some(Dest::Join(1)));
        // Two tiers that have both climbed to one rate merge into the older.
        let level = [g(1, 8_000_000, 8_000_000, 1), g(2, 8_000_000, 8_000_000, 1)];
        assert_eq!(desired(2, 8_000_000, &level), Some(Dest::Join(1)));
        assert_eq!(desired(1, 8_000_000, &level), None);
    }
}
