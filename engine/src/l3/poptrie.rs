//! The lookup structure shared by IPv4 and IPv6: a Poptrie (Asai and Ohara, SIGCOMM 2015).
//!
//! A direct-pointing array indexed by the top `K::DIRECT_BITS` bits of the address holds either
//! a leaf (the answer) or the index of a node. Each node covers 6 more bits: 64 slots whose
//! internal children and leaves live in two contiguous arrays. Two 64-bit bitmaps compress
//! them: `vector` marks the slots that are internal nodes, `leafvec` marks where a run of equal
//! leaves starts, so `popcount` of the bits up to the slot gives the offset into the children or
//! leaves of the node. Equal neighbouring leaves are stored once: no leaf pushing blow-up.
//!
//! The structure is built from a [`BinaryTrie`] (the FIB's source of truth, owned by the writer)
//! and patched per direct-array entry when a prefix changes: only the entries the prefix covers
//! are rebuilt, their new subtrees appended, the old ones counted as garbage and the whole
//! structure compacted by a rebuild when garbage outweighs live data.
//!
//! Full-table figures (901,899 IPv4 prefixes, 18-bit direct array) are in docs/ARCHITECTURE.md.

use core::fmt;
use core::hint::black_box;
use core::marker::PhantomData;

/// A leaf: a next-hop index, or [`NO_ROUTE`].
pub type Leaf = u16;

/// The leaf value meaning "no route covers the address".
pub const NO_ROUTE: Leaf = u16::MAX;

/// Bits per node level.
const STRIDE: u32 = 6;
/// A direct-array entry with this bit set is a leaf; otherwise it is a node index.
const DIRECT_LEAF: u32 = 1 << 31;
/// Binary trie "no child".
const NIL: u32 = u32::MAX;

/// An address as an unsigned integer key, most significant bit first.
pub trait Key: Copy + Eq + Ord + fmt::Debug + Send + Sync + 'static {
    /// Width of the key in bits.
    const BITS: u32;
    /// Bits resolved by the direct-pointing array.
    const DIRECT_BITS: u32;
    /// `n` (at most 32) bits starting at bit `pos` counted from the most significant, as the
    /// low bits of the result; bits past the end of the key read as zero.
    fn bits(self, pos: u32, n: u32) -> u32;
    /// The bit at `pos` (0 or 1); `pos < BITS`.
    fn bit(self, pos: u32) -> usize {
        self.bits(pos, 1) as usize
    }
}

impl Key for u32 {
    const BITS: u32 = 32;
    // 18 bits: 1 MiB of direct array, and a /24 resolves in one node below it.
    const DIRECT_BITS: u32 = 18;
    #[inline(always)]
    fn bits(self, pos: u32, n: u32) -> u32 {
        // Widen so that positions past bit 31 read zeros without an overflowing shift.
        let w = u64::from(self) << 32;
        ((w << pos) >> (64 - n)) as u32
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    // IPv6 tables are sparse in the top bits (2000::/3); 16 bits keep the array at 256 KiB.
    const DIRECT_BITS: u32 = 16;
    #[inline(always)]
    fn bits(self, pos: u32, n: u32) -> u32 {
        if pos >= 128 {
            return 0;
        }
        ((self << pos) >> (128 - n)) as u32
    }
}

#[derive(Debug, Clone, Copy)]
struct TrieNode {
    child: [u32; 2],
    value: Leaf,
}

/// A plain binary trie of prefixes to leaves: the writer's copy of the FIB contents, from which
/// the Poptrie is built. Empty branches are pruned on removal, so "has a child" means "a longer
/// prefix exists below".
#[derive(Clone)]
pub struct BinaryTrie<K> {
    nodes: Vec<TrieNode>,
    free: Vec<u32>,
    len: usize,
    _k: PhantomData<K>,
}

impl<K: Key> fmt::Debug for BinaryTrie<K> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "BinaryTrie {{ prefixes: {}, nodes: {} }}",
            self.len,
            self.nodes.len()
        )
    }
}

impl<K: Key> Default for BinaryTrie<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key> BinaryTrie<K> {
    pub fn new() -> Self {
        BinaryTrie {
            nodes: vec![TrieNode {
                child: [NIL; 2],
                value: NO_ROUTE,
            }],
            free: Vec::new(),
            len: 0,
            _k: PhantomData,
        }
    }

    /// Number of prefixes held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets `key/len` to `value`; returns the previous value. `value` must not be [`NO_ROUTE`].
    pub fn insert(&mut self, key: K, len: u32, value: Leaf) -> Option<Leaf> {
        debug_assert!(len <= K::BITS && value != NO_ROUTE);
        let mut n = 0usize;
        for d in 0..len {
            let b = key.bit(d);
            let c = self.nodes[n].child[b];
            n = if c == NIL {
                let fresh = TrieNode {
                    child: [NIL; 2],
                    value: NO_ROUTE,
                };
                let idx = match self.free.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = fresh;
                        i
                    }
                    None => {
                        self.nodes.push(fresh);
                        (self.nodes.len() - 1) as u32
                    }
                };
                self.nodes[n].child[b] = idx;
                idx as usize
            } else {
                c as usize
            };
        }
        let old = core::mem::replace(&mut self.nodes[n].value, value);
        if old == NO_ROUTE {
            self.len += 1;
            None
        } else {
            Some(old)
        }
    }

    /// Removes `key/len`; returns its value if it was there.
    pub fn remove(&mut self, key: K, len: u32) -> Option<Leaf> {
        let mut path = [0u32; 129];
        let mut n = 0usize;
        for d in 0..len {
            path[d as usize] = n as u32;
            let c = self.nodes[n].child[key.bit(d)];
            if c == NIL {
                return None;
            }
            n = c as usize;
        }
        let old = core::mem::replace(&mut self.nodes[n].value, NO_ROUTE);
        if old == NO_ROUTE {
            return None;
        }
        self.len -= 1;
        // Prune the now useless tail of the path.
        let mut d = len;
        while d > 0 {
            let node = self.nodes[n];
            if node.value != NO_ROUTE || node.child != [NIL; 2] {
                break;
            }
            d -= 1;
            let parent = path[d as usize] as usize;
            self.nodes[parent].child[key.bit(d)] = NIL;
            self.free.push(n as u32);
            n = parent;
        }
        Some(old)
    }

    /// The value stored for exactly `key/len`.
    pub fn get(&self, key: K, len: u32) -> Option<Leaf> {
        let mut n = 0usize;
        for d in 0..len {
            let c = self.nodes[n].child[key.bit(d)];
            if c == NIL {
                return None;
            }
            n = c as usize;
        }
        let v = self.nodes[n].value;
        (v != NO_ROUTE).then_some(v)
    }

    /// Longest match, bit by bit: `(prefix length, value)`. Slow; for the control plane.
    pub fn longest_match(&self, key: K) -> Option<(u32, Leaf)> {
        let mut best = None;
        let mut n = 0usize;
        let mut d = 0;
        loop {
            let v = self.nodes[n].value;
            if v != NO_ROUTE {
                best = Some((d, v));
            }
            if d == K::BITS {
                return best;
            }
            let c = self.nodes[n].child[key.bit(d)];
            if c == NIL {
                return best;
            }
            n = c as usize;
            d += 1;
        }
    }

    /// Every `(key, len, value)`, in no particular order.
    pub fn iter(&self) -> Vec<(K, u32, Leaf)>
    where
        K: From<u8> + core::ops::Shl<u32, Output = K> + core::ops::BitOr<Output = K>,
    {
        let mut out = Vec::with_capacity(self.len);
        let mut stack = vec![(0u32, K::from(0u8), 0u32)];
        while let Some((n, key, d)) = stack.pop() {
            let node = self.nodes[n as usize];
            if node.value != NO_ROUTE {
                out.push((key, d, node.value));
            }
            for b in 0..2u8 {
                let c = node.child[b as usize];
                if c != NIL {
                    stack.push((c, key | (K::from(b) << (K::BITS - 1 - d)), d + 1));
                }
            }
        }
        out
    }

    /// Bytes allocated.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * core::mem::size_of::<TrieNode>() + self.free.capacity() * 4
    }

    /// The trie node at depth `d` on `key`'s path and the value of the longest prefix at or
    /// above it; `None` if the path ends earlier.
    fn node_at(&self, key: K, d: u32) -> Option<(u32, Leaf)> {
        let mut n = 0usize;
        let mut def = self.nodes[0].value;
        for i in 0..d {
            let c = self.nodes[n].child[key.bit(i)];
            if c == NIL {
                return None;
            }
            n = c as usize;
            let v = self.nodes[n].value;
            if v != NO_ROUTE {
                def = v;
            }
        }
        Some((n as u32, def))
    }

    fn has_children(&self, n: u32) -> bool {
        self.nodes[n as usize].child != [NIL; 2]
    }
}

/// A Poptrie node: 24 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Bit `i` set: slot `i` is an internal node.
    vector: u64,
    /// Bit `i` set: a run of equal leaves starts at slot `i` (internal slots do not break runs).
    leafvec: u64,
    /// Index of the first leaf of this node in `leaves`.
    base0: u32,
    /// Index of the first child of this node in `nodes`.
    base1: u32,
}

/// Mask of the bits `0..=v`.
#[inline(always)]
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// The read-side lookup structure. Immutable while readers hold it; see the module doc.
#[derive(Clone)]
pub struct Poptrie<K> {
    direct: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<Leaf>,
    dead_nodes: usize,
    dead_leaves: usize,
    _k: PhantomData<K>,
}

impl<K: Key> fmt::Debug for Poptrie<K> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Poptrie {{ direct: {}, nodes: {} ({} dead), leaves: {} ({} dead), bytes: {} }}",
            self.direct.len(),
            self.nodes.len(),
            self.dead_nodes,
            self.leaves.len(),
            self.dead_leaves,
            self.memory_bytes()
        )
    }
}

/// How many addresses ahead the batch lookup touches the next levels.
const AHEAD: usize = 4;

impl<K: Key> Poptrie<K> {
    /// Builds the structure for everything in `trie`.
    pub fn build(trie: &BinaryTrie<K>) -> Self {
        let mut p = Poptrie {
            direct: vec![DIRECT_LEAF | u32::from(NO_ROUTE); 1 << K::DIRECT_BITS],
            // Index 0 of both arrays is a sentinel that the branch-free batch walk parks
            // finished lanes on: a node whose every slot is leaf 0, and that leaf.
            nodes: vec![Node {
                vector: 0,
                leafvec: 1,
                base0: 0,
                base1: 0,
            }],
            leaves: vec![NO_ROUTE],
            dead_nodes: 0,
            dead_leaves: 0,
            _k: PhantomData,
        };
        p.rebuild_direct(trie, 0, 1 << K::DIRECT_BITS);
        p.nodes.shrink_to_fit();
        p.leaves.shrink_to_fit();
        p
    }

    /// Brings the structure in line with `trie` after the prefix `key/len` changed there.
    ///
    /// Rebuilds only the deepest node whose slots the prefix covers (subtrees under untouched
    /// slots are kept, only their node records move), or the direct entries for a prefix
    /// shorter than the direct array. Compacts when garbage outweighs live data.
    pub fn update(&mut self, trie: &BinaryTrie<K>, key: K, len: u32) {
        if !self.refill_path(trie, key, len) {
            let (lo, hi) = Self::direct_range(key, len);
            self.rebuild_direct(trie, lo, hi);
        }
        if self.dead_nodes > 4096 + self.nodes.len() / 2
            || self.dead_leaves > 4096 + self.leaves.len() / 2
        {
            *self = Self::build(trie);
        }
    }

    /// Refills the deepest node on `key`'s path at a depth `<= len` that must still exist.
    /// `false` if there is none (the change is at the direct array).
    fn refill_path(&mut self, trie: &BinaryTrie<K>, key: K, len: u32) -> bool {
        if len < K::DIRECT_BITS {
            return false;
        }
        let e = self.direct[key.bits(0, K::DIRECT_BITS) as usize];
        if e & DIRECT_LEAF != 0 {
            return false;
        }
        // (node index, depth) from the top; at most 128 / STRIDE + 1 levels.
        let mut path = [(0u32, 0u32); 24];
        let mut depth = 0;
        let (mut n, mut d) = (e, K::DIRECT_BITS);
        loop {
            path[depth] = (n, d);
            depth += 1;
            if d + STRIDE > len || depth == path.len() {
                break;
            }
            let node = self.nodes[n as usize];
            let v = key.bits(d, STRIDE);
            if node.vector >> v & 1 == 0 {
                break;
            }
            n = node.base1 + (node.vector & upto(v)).count_ones() - 1;
            d += STRIDE;
        }
        for &(n, d) in path[..depth].iter().rev() {
            if let Some((t, def)) = trie.node_at(key, d) {
                if trie.has_children(t) {
                    self.refill_node(trie, t, d, def, n as usize, key, len);
                    return true;
                }
            }
        }
        false
    }

    /// Rebuilds node `at` (trie node `t` at depth `d`) after `key/len` changed: the slots the
    /// prefix covers get new subtrees, the others keep theirs.
    #[allow(clippy::too_many_arguments)]
    fn refill_node(
        &mut self,
        trie: &BinaryTrie<K>,
        t: u32,
        d: u32,
        def: Leaf,
        at: usize,
        key: K,
        len: u32,
    ) {
        let (lo, hi) = if len >= d + STRIDE {
            let s = key.bits(d, STRIDE);
            (s, s)
        } else if len == d {
            (0, 63)
        } else {
            let k = len - d;
            let s = key.bits(d, k) << (STRIDE - k);
            (s, s | ((1 << (STRIDE - k)) - 1))
        };
        let old = self.nodes[at];
        self.dead_leaves += old.leafvec.count_ones() as usize;
        for s in 0..64u32 {
            if old.vector >> s & 1 != 0 {
                let c = (old.base1 + (old.vector & upto(s)).count_ones() - 1) as usize;
                if (lo..=hi).contains(&s) {
                    self.count_dead(c);
                } else {
                    self.dead_nodes += 1;
                }
            }
        }
        self.fill_node(trie, t, d, def, at, Some((old, lo, hi)));
    }

    /// The direct-array entries `[lo, hi)` a prefix covers.
    pub fn direct_range(key: K, len: u32) -> (usize, usize) {
        let lo = key.bits(0, K::DIRECT_BITS) as usize;
        let span = if len >= K::DIRECT_BITS {
            1
        } else {
            1usize << (K::DIRECT_BITS - len)
        };
        let lo = lo & !(span - 1);
        (lo, lo + span)
    }

    /// Bytes allocated by the structure.
    pub fn memory_bytes(&self) -> usize {
        self.direct.capacity() * 4
            + self.nodes.capacity() * core::mem::size_of::<Node>()
            + self.leaves.capacity() * core::mem::size_of::<Leaf>()
    }

    /// Live node count (for reports).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.dead_nodes
    }

    /// Longest-prefix match: the leaf of the longest prefix containing `key`, or [`NO_ROUTE`].
    #[inline]
    pub fn lookup(&self, key: K) -> Leaf {
        let e = self.direct[key.bits(0, K::DIRECT_BITS) as usize];
        if e & DIRECT_LEAF != 0 {
            return e as Leaf;
        }
        let mut node = self.nodes[e as usize];
        let mut pos = K::DIRECT_BITS;
        loop {
            let v = key.bits(pos, STRIDE);
            if node.vector >> v & 1 != 0 {
                let i = node.base1 + (node.vector & upto(v)).count_ones() - 1;
                node = self.nodes[i as usize];
                pos += STRIDE;
            } else {
                let i = node.base0 + (node.leafvec & upto(v)).count_ones() - 1;
                return self.leaves[i as usize];
            }
        }
    }

    /// Looks up a burst: `out[i] = lookup(keys[i])` for `i < min(keys.len(), out.len())`.
    ///
    /// Software prefetch without `unsafe`: while address `i` is looked up, the direct entry of
    /// address `i + 2 * AHEAD` and the first node of address `i + AHEAD` are loaded and passed
    /// to [`black_box`] so the compiler keeps the loads. Their cache misses then overlap with
    /// the lookups in between, as `rte_prefetch0` does in DPDK's l3fwd.
    pub fn lookup_batch(&self, keys: &[K], out: &mut [Leaf]) {
        let n = keys.len().min(out.len());
        for i in 0..n {
            if let Some(k) = keys.get(i + 2 * AHEAD) {
                black_box(self.direct[k.bits(0, K::DIRECT_BITS) as usize]);
            }
            if let Some(k) = keys.get(i + AHEAD) {
                let e = self.direct[k.bits(0, K::DIRECT_BITS) as usize];
                if e & DIRECT_LEAF == 0 {
                    black_box(self.nodes[e as usize].vector);
                }
            }
            out[i] = self.lookup(keys[i]);
        }
    }

    /// Recomputes the direct entries `[lo, hi)` from `trie`.
    fn rebuild_direct(&mut self, trie: &BinaryTrie<K>, lo: usize, hi: usize) {
        self.fill_direct(trie, Some(0), 0, 0, NO_ROUTE, lo, hi);
    }

    /// Fills the part of `[lo, hi)` under trie node `t` (depth `d`, first direct index `base`),
    /// `def` being the value of the longest prefix above `t`.
    #[allow(clippy::too_many_arguments)]
    fn fill_direct(
        &mut self,
        trie: &BinaryTrie<K>,
        t: Option<u32>,
        d: u32,
        base: usize,
        def: Leaf,
        lo: usize,
        hi: usize,
    ) {
        let span = 1usize << (K::DIRECT_BITS - d);
        if base + span <= lo || base >= hi {
            return;
        }
        let (t, def) = match t {
            Some(t) => {
                let v = trie.nodes[t as usize].value;
                (t, if v != NO_ROUTE { v } else { def })
            }
            None => {
                for i in base.max(lo)..(base + span).min(hi) {
                    self.set_direct(i, DIRECT_LEAF | u32::from(def));
                }
                return;
            }
        };
        if d == K::DIRECT_BITS {
            let entry = if trie.has_children(t) {
                let at = self.nodes.len();
                self.nodes.push(Node::default());
                self.fill_node(trie, t, d, def, at, None);
                at as u32
            } else {
                DIRECT_LEAF | u32::from(def)
            };
            self.set_direct(base, entry);
            return;
        }
        let half = span / 2;
        for b in 0..2 {
            let c = trie.nodes[t as usize].child[b];
            let c = (c != NIL).then_some(c);
            self.fill_direct(trie, c, d + 1, base + b * half, def, lo, hi);
        }
    }

    fn set_direct(&mut self, i: usize, entry: u32) {
        let old = core::mem::replace(&mut self.direct[i], entry);
        if old & DIRECT_LEAF == 0 {
            self.count_dead(old as usize);
        }
    }

    /// Counts the subtree at `n` as garbage.
    fn count_dead(&mut self, n: usize) {
        let node = self.nodes[n];
        self.dead_nodes += 1;
        self.dead_leaves += node.leafvec.count_ones() as usize;
        for j in 0..node.vector.count_ones() as usize {
            self.count_dead(node.base1 as usize + j);
        }
    }

    /// Builds node `at` for trie node `t` at depth `d` (a multiple of the stride past the
    /// direct bits), `def` being the value of the longest prefix at or above `t`.
    /// With `reuse = Some((old, lo, hi))`, children of internal slots outside `lo..=hi` are
    /// taken over from `old` (their subtrees are unchanged) instead of being rebuilt.
    fn fill_node(
        &mut self,
        trie: &BinaryTrie<K>,
        t: u32,
        d: u32,
        def: Leaf,
        at: usize,
        reuse: Option<(Node, u32, u32)>,
    ) {
        let steps = STRIDE.min(K::BITS - d);
        let mut vector = 0u64;
        let mut leafvec = 0u64;
        let mut kids: [(u32, Leaf, u32); 64] = [(NIL, NO_ROUTE, 0); 64];
        let mut nkids = 0;
        let leaf_base = self.leaves.len();
        let mut last: Option<Leaf> = None;
        for slot in 0..64u32 {
            let mut cur = t;
            let mut val = def;
            let mut reached = true;
            for k in 0..steps {
                let b = (slot >> (STRIDE - 1 - k)) & 1;
                let c = trie.nodes[cur as usize].child[b as usize];
                if c == NIL {
                    reached = false;
                    break;
                }
                cur = c;
                let v = trie.nodes[cur as usize].value;
                if v != NO_ROUTE {
                    val = v;
                }
            }
            if reached && steps == STRIDE && trie.has_children(cur) {
                vector |= 1 << slot;
                kids[nkids] = (cur, val, slot);
                nkids += 1;
            } else if last != Some(val) {
                leafvec |= 1 << slot;
                self.leaves.push(val);
                last = Some(val);
            }
        }
        let child_base = self.nodes.len();
        self.nodes.resize(child_base + nkids, Node::default());
        self.nodes[at] = Node {
            vector,
            leafvec,
            base0: leaf_base as u32,
            base1: child_base as u32,
        };
        for (j, &(ct, cv, slot)) in kids[..nkids].iter().enumerate() {
            match reuse {
                // Only a slot that already had a subtree keeps it. Another change of the
                // same batch (a spare patched with several keys, the trie already holding
                // all of them) can have turned a leaf slot outside `lo..=hi` into a
                // subtree: that one is built, not taken from a sibling's record.
                Some((old, lo, hi))
                    if !(lo..=hi).contains(&slot) && old.vector >> slot & 1 != 0 =>
                {
                    let c = old.base1 + (old.vector & upto(slot)).count_ones() - 1;
                    self.nodes[child_base + j] = self.nodes[c as usize];
                }
                _ => self.fill_node(trie, ct, d + STRIDE, cv, child_base + j, None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bits() {
        let k: u32 = 0xc612_0a01;
        assert_eq!(k.bits(0, 8), 0xc6);
        assert_eq!(k.bits(0, 18), 0xc612_0a01 >> 14);
        assert_eq!(k.bits(30, 6), 0b01_0000);
        assert_eq!(k.bits(31, 1), 1);
        let k6: u128 = 0x2001_0002u128 << 96 | 1;
        assert_eq!(k6.bits(0, 16), 0x2001);
        assert_eq!(k6.bits(124, 6), 0b00_0100);
        assert_eq!(k6.bits(130, 6), 0);
    }

    #[test]
    fn trie_insert_remove_prunes() {
        let mut t = BinaryTrie::<u32>::new();
        assert_eq!(t.insert(0xc612_0000, 15, 1), None);
        assert_eq!(t.insert(0xc612_0000, 24, 2), None);
        assert_eq!(t.insert(0xc612_0000, 24, 3), Some(2));
        assert_eq!(t.longest_match(0xc612_00ff), Some((24, 3)));
        assert_eq!(t.longest_match(0xc613_00ff), Some((15, 1)));
        assert_eq!(t.remove(0xc612_0000, 24), Some(3));
        assert_eq!(t.remove(0xc612_0000, 24), None);
        // Only the /15 path is left: 15 nodes below the root.
        assert_eq!(t.nodes.len() - t.free.len(), 16);
        assert_eq!(t.len(), 1);
    }

    /// Batches of changes under a few nodes, patched one key at a time against a
    /// trie that already holds the whole batch (how a batch and the spare are
    /// patched), give the lookups of a fresh build, IPv4 and IPv6.
    #[test]
    fn batches_patch_like_a_fresh_build() {
        fn run<K: Key + Copy + core::fmt::Debug>(
            mk: impl Fn(u64) -> (K, u32),
            probe: impl Fn(u64) -> K,
        ) {
            let mut t = BinaryTrie::<K>::new();
            let mut p = Poptrie::build(&t);
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for round in 0..300 {
                let mut batch = Vec::new();
                for _ in 0..(1 + next() % 12) {
                    let (k, l) = mk(next());
                    if next() % 3 == 0 {
                        t.remove(k, l);
                    } else {
                        t.insert(k, l, (next() % 50) as Leaf);
                    }
                    batch.push((k, l));
                }
                for &(k, l) in &batch {
                    p.update(&t, k, l);
                }
                let fresh = Poptrie::build(&t);
                for _ in 0..200 {
                    let a = probe(next());
                    assert_eq!(p.lookup(a), fresh.lookup(a), "round {round}: {a:?}");
                }
            }
        }
        // Prefixes of /18-/32 under a handful of /16s.
        run(
            |r| {
                let l = 18 + (r % 15) as u32;
                let k = (0xc612_0000u32 | ((r >> 8) as u32 & 0x3_ffff)) & (u32::MAX << (32 - l));
                (k, l)
            },
            |r| 0xc612_0000u32 | (r as u32 & 0x3_ffff),
        );
        // /20-/64 under 2001:2::/32.
        run(
            |r| {
                let l = 20 + (r % 45) as u32;
                let k = ((0x2001_0002u128 << 96) | (u128::from(r >> 8) << 64))
                    & (u128::MAX << (128 - l));
                (k, l)
            },
            |r| (0x2001_0002u128 << 96) | (u128::from(r & 0xff_ffff) << 64) | u128::from(r),
        );
    }

    #[test]
    fn leaf_runs_are_compressed() {
        let mut t = BinaryTrie::<u32>::new();
        // One /24 inside an /18-aligned block: a single node, slots 0 (the /24) and a run.
        t.insert(0xc612_0000, 24, 7);
        t.insert(0xc612_0000, 16, 9);
        let p = Poptrie::build(&t);
        // Index 0 of each array is the sentinel.
        assert_eq!(p.nodes.len(), 2);
        assert_eq!(p.leaves, vec![NO_ROUTE, 7, 9]);
        assert_eq!(p.lookup(0xc612_0001), 7);
        assert_eq!(p.lookup(0xc612_0101), 9);
        assert_eq!(p.lookup(0xc612_ff01), 9);
        assert_eq!(p.lookup(0xc613_0101), NO_ROUTE);
        assert_eq!(p.lookup(0xc614_0101), NO_ROUTE);
    }
}
