//! Who may message whom, cached: friendships and group member lists as last read from the
//! database. Every relation change is announced through [`super::AppCore::announce`], which
//! forgets exactly the entries of the users and groups it names before the request that made
//! the change answers, so the cache never grants what the database no longer does.
//!
//! Only what exists is cached (a friendship, a group with members). A probe for a random
//! user or group id costs a lookup and leaves nothing behind, so no client can grow the
//! cache or push out anybody else's entries; the relay's per-user frame budget bounds the
//! lookups.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::RelationEvent;
use crate::error::ApiError;

/// Above this many cached friendships (or groups), the cache starts over: a memory bound
/// for very large installations, not something a client can trigger.
const MAX_ENTRIES: usize = 500_000;

/// Friendships known to hold.
#[derive(Default)]
struct Friendships {
    /// Each user's friends known to be friends (kept symmetric).
    of: HashMap<Uuid, HashSet<Uuid>>,
    /// The users whose every friend `of` holds (read whole by
    /// [`Permissions::friends_of`]); every other entry may lack some.
    complete: HashSet<Uuid>,
}

#[derive(Default)]
pub struct Permissions {
    friends: RwLock<Friendships>,
    /// Members of groups that have some.
    members: RwLock<HashMap<Uuid, Arc<Vec<Uuid>>>>,
    /// Moves on every change: a lookup that started before a change does not store its
    /// answer, which the change may already have made stale.
    generation: AtomicU64,
    /// While set, nothing is cached: on a cluster whose bus is down, changes made on
    /// other nodes would not be heard of (see [`Permissions::pause`]).
    paused: AtomicBool,
}

impl Permissions {
    /// The current generation: read before a lookup whose answer is to be stored.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Forgets everything and caches nothing until [`Permissions::resume`]: every check
    /// reads the database. A cluster node does this while it cannot hear the other nodes'
    /// changes.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        self.forget_all();
    }

    /// Caches again, starting from nothing.
    pub fn resume(&self) {
        self.forget_all();
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Forgets every entry (changes may have been missed).
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.friends.write().unwrap_or_else(|e| e.into_inner()) = Friendships::default();
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether an answer read at `generation` may be stored.
    fn may_store(&self, generation: u64) -> bool {
        !self.paused.load(Ordering::SeqCst) && self.generation() == generation
    }

    /// Forgets what `events` may have changed: the friendships of every user they name and
    /// the member lists of every group. The friends of a named user keep the rest of
    /// their lists, but not as whole lists.
    pub fn forget(&self, events: &[RelationEvent]) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        {
            let mut friends = self.friends.write().unwrap_or_else(|e| e.into_inner());
            let friends = &mut *friends;
            for event in events {
                friends.complete.remove(&event.user);
                if let Some(theirs) = friends.of.remove(&event.user) {
                    for friend in theirs {
                        friends.complete.remove(&friend);
                        if let Some(set) = friends.of.get_mut(&friend) {
                            set.remove(&event.user);
                        }
                    }
                }
            }
        }
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        for group in events.iter().filter_map(|e| e.community_id) {
            members.remove(&group);
        }
    }

    /// Whether `a` and `b` are friends.
    pub async fn are_friends(
        &self,
        db: &DatabaseConnection,
        a: Uuid,
        b: Uuid,
    ) -> Result<bool, ApiError> {
        let known = self
            .friends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .of
            .get(&a)
            .is_some_and(|set| set.contains(&b));
        if known {
            return Ok(true);
        }
        let generation = self.generation();
        let ok = super::relations::are_friends(db, a, b).await?;
        if ok {
            self.remember_friends(a, &[b], generation, false);
        }
        Ok(ok)
    }

    /// Everyone `me` is friends with, read from the database unless a whole list read
    /// before is still known (a relation change, a pause, forgets it).
    pub async fn friends_of(
        &self,
        db: &DatabaseConnection,
        me: Uuid,
    ) -> Result<Vec<Uuid>, ApiError> {
        {
            let friends = self.friends.read().unwrap_or_else(|e| e.into_inner());
            if friends.complete.contains(&me) {
                let theirs = friends.of.get(&me);
                return Ok(theirs.map_or_else(Vec::new, |set| set.iter().copied().collect()));
            }
        }
        let generation = self.generation();
        let friends = super::messages::friends_of(db, me).await?;
        self.remember_friends(me, &friends, generation, true);
        Ok(friends)
    }

    /// Records that `me` is friends with each of `friends` (all of them when `whole`), as
    /// read at `generation` ([`Permissions::generation`] before the read); nothing when a
    /// change came since.
    fn remember_friends(&self, me: Uuid, friends: &[Uuid], generation: u64, whole: bool) {
        let mut map = self.friends.write().unwrap_or_else(|e| e.into_inner());
        if !self.may_store(generation) {
            return;
        }
        if map.of.len() + friends.len() + 1 > MAX_ENTRIES {
            *map = Friendships::default();
        }
        let map = &mut *map;
        let mine = map.of.entry(me).or_default();
        mine.extend(friends.iter().copied());
        if whole {
            map.complete.insert(me);
        }
        for &friend in friends {
            map.of.entry(friend).or_default().insert(me);
        }
    }

    /// The members of a group (empty when it does not exist or has been dissolved).
    pub async fn group_members(
        &self,
        db: &DatabaseConnection,
        group: Uuid,
    ) -> Result<Arc<Vec<Uuid>>, ApiError> {
        if let Some(m) = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&group)
        {
            return Ok(m.clone());
        }
        let generation = self.generation();
        let members = Arc::new(super::messages::group_members(db, group).await?);
        if !members.is_empty() {
            let mut cache = self.members.write().unwrap_or_else(|e| e.into_inner());
            if self.may_store(generation) {
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache.insert(group, members.clone());
            }
        }
        Ok(members)
    }

    /// How many users and groups have entries (for tests).
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.friends
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .of
                .len(),
            self.members.read().unwrap_or_else(|e| e.into_inner()).len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RelationChange;

    fn event(user: Uuid, group: Option<Uuid>) -> RelationEvent {
        RelationEvent {
            user,
            change: RelationChange::FriendRemoved,
            username: None,
            community_id: group,
        }
    }

    #[test]
    fn a_change_forgets_only_the_users_it_names() {
        let p = Permissions::default();
        let [a, b, c, d] = std::array::from_fn(|_| Uuid::new_v4());
        p.remember_friends(a, &[b, c], p.generation(), false);
        p.remember_friends(c, &[d], p.generation(), false);
        p.forget(&[event(b, None)]);
        let friends = p.friends.read().unwrap();
        assert!(!friends.of.get(&a).unwrap().contains(&b), "a–b forgotten");
        assert!(!friends.of.contains_key(&b));
        assert!(friends.of.get(&a).unwrap().contains(&c), "a–c kept");
        assert!(friends.of.get(&d).unwrap().contains(&c), "c–d kept");
    }

    /// Whose whole list of friends is known.
    fn whole(p: &Permissions, user: Uuid) -> bool {
        p.friends.read().unwrap().complete.contains(&user)
    }

    #[test]
    fn a_whole_list_stays_whole_until_a_change_names_its_user_or_a_friend() {
        let p = Permissions::default();
        let [a, b, c, d] = std::array::from_fn(|_| Uuid::new_v4());
        p.remember_friends(a, &[b], p.generation(), true);
        p.remember_friends(c, &[], p.generation(), true);
        p.remember_friends(d, &[c], p.generation(), false);
        assert!(whole(&p, a) && whole(&p, c), "a and c were read whole");
        assert!(
            !whole(&p, b) && !whole(&p, d),
            "b and d were only seen beside others"
        );
        // A change naming b: a's list lost b, and is no longer taken as whole.
        p.forget(&[event(b, None)]);
        assert!(!whole(&p, a));
        assert!(whole(&p, c), "a change elsewhere leaves c's list whole");
        p.forget(&[event(c, None)]);
        assert!(!whole(&p, c));
        assert!(!p.friends.read().unwrap().of.contains_key(&c));
    }

    #[test]
    fn a_whole_list_read_before_a_change_or_a_pause_is_not_stored() {
        let p = Permissions::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let before = p.generation();
        p.forget(&[event(b, None)]);
        p.remember_friends(a, &[b], before, true);
        assert!(!whole(&p, a));
        p.remember_friends(a, &[b], p.generation(), true);
        assert!(whole(&p, a));
        p.pause();
        assert!(!whole(&p, a), "a pause forgets whole lists");
        p.remember_friends(a, &[b], p.generation(), true);
        assert!(!whole(&p, a), "nothing is stored while paused");
    }

    #[test]
    fn a_lookup_older_than_a_change_is_not_stored() {
        let p = Permissions::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let before = p.generation();
        p.forget(&[event(a, None)]);
        p.remember_friends(a, &[b], before, false);
        assert_eq!(p.sizes(), (0, 0));
    }

    #[test]
    fn paused_it_forgets_everything_and_stores_nothing_until_resumed() {
        let p = Permissions::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        p.remember_friends(a, &[b], p.generation(), false);
        assert_eq!(p.sizes(), (2, 0));
        let before = p.generation();
        p.pause();
        assert_eq!(p.sizes(), (0, 0));
        p.remember_friends(a, &[b], p.generation(), false);
        assert_eq!(p.sizes(), (0, 0), "nothing is stored while paused");
        p.resume();
        p.remember_friends(a, &[b], before, false);
        assert_eq!(p.sizes(), (0, 0), "a lookup from before the pause is stale");
        p.remember_friends(a, &[b], p.generation(), false);
        assert_eq!(p.sizes(), (2, 0));
    }
}
