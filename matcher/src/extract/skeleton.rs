//! The skeleton as a graph: nodes are ridge endings (one neighbour) and forks (three or more neighbours, adjacent
//! fork pixels merged into one node); edges are the traced ridge paths between them. Working on the graph rather
//! than on pixels lets the false-minutia filters (`filter.rs`) reason about ridge lengths and shapes.

use super::binary::{Binary, NEIGHBOURS};

/// A pixel position.
pub(crate) type Pixel = (u16, u16);

/// A node: an ending or a fork.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub x: f32,
    pub y: f32,
    /// Incident edges (a loop appears twice).
    pub edges: Vec<usize>,
    pub alive: bool,
}

/// A ridge path between two nodes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    /// Pixels strictly between the two nodes, in order from `from` to `to`.
    pub path: Vec<Pixel>,
    pub alive: bool,
}

impl Edge {
    /// Length in pixels (path steps, counting the two node ends).
    pub(crate) fn length(&self) -> usize {
        self.path.len() + 1
    }
}

/// The skeleton graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Builds the graph of a thinned skeleton.
    pub(crate) fn of(skeleton: &Binary) -> Self {
        let (w, h) = (skeleton.width, skeleton.height);
        let mut node_of = vec![u32::MAX; w * h];
        let mut graph = Graph::default();
        let members = graph.find_nodes(skeleton, &mut node_of);
        let mut visited = vec![false; w * h];
        for (n, pixels) in members.iter().enumerate() {
            for start in exits(skeleton, &node_of, n, pixels) {
                graph.trace_from(skeleton, &node_of, &mut visited, n, start);
            }
        }
        graph
    }

    /// Finds the nodes, labels their pixels in `node_of`, and returns each node's pixels.
    fn find_nodes(&mut self, skeleton: &Binary, node_of: &mut [u32]) -> Vec<Vec<(usize, usize)>> {
        let (w, h) = (skeleton.width, skeleton.height);
        let mut stack = Vec::new();
        let mut members = Vec::new();
        let is_node = |x: usize, y: usize| {
            skeleton.get(x, y) && {
                let n = skeleton.pattern(x, y).count_ones();
                n == 1 || n >= 3
            }
        };
        for y in 0..h {
            for x in 0..w {
                if node_of[y * w + x] != u32::MAX || !is_node(x, y) {
                    continue;
                }
                let id = self.nodes.len() as u32;
                let (mut sx, mut sy, mut count) = (0.0f32, 0.0f32, 0.0f32);
                let mut pixels = Vec::new();
                node_of[y * w + x] = id;
                stack.push((x, y));
                while let Some((cx, cy)) = stack.pop() {
                    pixels.push((cx, cy));
                    sx += cx as f32;
                    sy += cy as f32;
                    count += 1.0;
                    // Only forks merge with neighbouring forks; an ending stays a single pixel.
                    if skeleton.pattern(cx, cy).count_ones() < 3 {
                        continue;
                    }
                    for (nx, ny) in neighbours(skeleton, cx, cy) {
                        let j = ny * w + nx;
                        if node_of[j] == u32::MAX && skeleton.pattern(nx, ny).count_ones() >= 3 {
                            node_of[j] = id;
                            stack.push((nx, ny));
                        }
                    }
                }
                self.nodes.push(Node {
                    x: sx / count,
                    y: sy / count,
                    edges: Vec::new(),
                    alive: true,
                });
                members.push(pixels);
            }
        }
        members
    }

    /// Traces the ridge leaving node `n` through pixel `start`, unless already traced.
    fn trace_from(
        &mut self,
        skeleton: &Binary,
        node_of: &[u32],
        visited: &mut [bool],
        n: usize,
        start: (usize, usize),
    ) {
        let w = skeleton.width;
        let start_index = start.1 * w + start.0;
        let other = node_of[start_index];
        if other != u32::MAX {
            // Two nodes touching directly: one edge without pixels, added once (from the lower id).
            let other = other as usize;
            if other > n {
                self.add_edge(n, other, Vec::new());
            }
            return;
        }
        if visited[start_index] {
            return;
        }
        let mut path = vec![(start.0 as u16, start.1 as u16)];
        visited[start_index] = true;
        let mut previous: Option<(usize, usize)> = None;
        let mut current = start;
        loop {
            let mut next_free = None;
            let mut end_node = None;
            for (nx, ny) in neighbours(skeleton, current.0, current.1) {
                let j = ny * w + nx;
                if Some((nx, ny)) == previous {
                    continue;
                }
                let id = node_of[j];
                if id != u32::MAX {
                    // Do not end back at the start node on the first step.
                    if !(id as usize == n && path.len() == 1) {
                        end_node = Some(id as usize);
                    }
                } else if !visited[j] {
                    next_free = Some((nx, ny));
                }
            }
            if let Some(end) = end_node.filter(|_| next_free.is_none() || path.len() > 1) {
                self.add_edge(n, end, path);
                return;
            }
            match next_free {
                Some(p) => {
                    visited[p.1 * w + p.0] = true;
                    path.push((p.0 as u16, p.1 as u16));
                    previous = Some(current);
                    current = p;
                }
                None => {
                    if let Some(end) = end_node {
                        self.add_edge(n, end, path);
                    }
                    return;
                }
            }
        }
    }

    pub(crate) fn add_edge(&mut self, from: usize, to: usize, path: Vec<Pixel>) -> usize {
        let id = self.edges.len();
        self.edges.push(Edge {
            from,
            to,
            path,
            alive: true,
        });
        self.nodes[from].edges.push(id);
        self.nodes[to].edges.push(id);
        id
    }

    /// Number of live edge ends at node `n`.
    pub(crate) fn degree(&self, n: usize) -> usize {
        self.nodes[n]
            .edges
            .iter()
            .filter(|&&e| self.edges[e].alive)
            .count()
    }

    /// The live edges at node `n` (a loop appears twice).
    pub(crate) fn live_edges(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes[n]
            .edges
            .iter()
            .copied()
            .filter(|&e| self.edges[e].alive)
    }

    /// The node at the other end of edge `e` from `n`.
    pub(crate) fn other_end(&self, e: usize, n: usize) -> usize {
        let edge = &self.edges[e];
        if edge.from == n { edge.to } else { edge.from }
    }

    /// The path of edge `e` as seen walking away from node `n`.
    pub(crate) fn path_from(&self, e: usize, n: usize) -> impl Iterator<Item = Pixel> + '_ {
        let edge = &self.edges[e];
        let forward = edge.from == n;
        let len = edge.path.len();
        (0..len).map(move |k| edge.path[if forward { k } else { len - 1 - k }])
    }
}

/// Skeleton pixels next to node `n`'s pixels (`members`) that are not part of node `n`.
fn exits(
    skeleton: &Binary,
    node_of: &[u32],
    n: usize,
    members: &[(usize, usize)],
) -> Vec<(usize, usize)> {
    let w = skeleton.width;
    let mut out = Vec::new();
    for &(x, y) in members {
        for p in neighbours(skeleton, x, y) {
            if node_of[p.1 * w + p.0] as usize != n && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Ridge pixels 8-adjacent to `(x, y)`.
fn neighbours(skeleton: &Binary, x: usize, y: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let pattern = skeleton.pattern(x, y);
    NEIGHBOURS
        .iter()
        .enumerate()
        .filter(move |(k, _)| pattern >> k & 1 == 1)
        .map(move |(_, (dx, dy))| ((x as isize + dx) as usize, (y as isize + dy) as usize))
}
