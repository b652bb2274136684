//! The area a template covers, as the convex hull of its minutiae, used to count how many minutiae of the other
//! template fall where this one could have shown them (the overlap of two impressions).

/// Convex hull, counter-clockwise, without repeated end point; each edge also as an inward unit normal and offset
/// (`nx * x + ny * y >= offset` inside), so that containment is a few multiply-adds per edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Hull {
    vertices: Vec<(f32, f32)>,
    /// `(nx, ny, offset)` per edge.
    planes: Vec<(f32, f32, f32)>,
}

impl Hull {
    /// Makes this the hull of these `vertices` (counter-clockwise, as [`vertex_indices`] gives them), reusing its
    /// buffers.
    pub(crate) fn set(&mut self, vertices: impl Iterator<Item = (f32, f32)>) {
        let hull = &mut self.vertices;
        hull.clear();
        hull.extend(vertices);
        self.planes.clear();
        if hull.len() < 3 {
            return;
        }
        let n = hull.len();
        self.planes.extend((0..n).filter_map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % n]);
            let length = (b.0 - a.0).hypot(b.1 - a.1);
            // Left of a -> b is inside for a counter-clockwise hull.
            (length > 0.0).then(|| {
                let (nx, ny) = (-(b.1 - a.1) / length, (b.0 - a.0) / length);
                (nx, ny, nx * a.0 + ny * a.1)
            })
        }));
    }

    /// Whether `q` lies inside the hull grown by `margin` pixels (a degenerate hull of fewer than 3 vertices
    /// contains nothing).
    pub(crate) fn contains(&self, q: (f32, f32), margin: f32) -> bool {
        if self.vertices.len() < 3 {
            return false;
        }
        self.planes
            .iter()
            .all(|&(nx, ny, offset)| nx * q.0 + ny * q.1 >= offset - margin)
    }
}

/// Z component of `(b - a) x (c - a)`: positive when `c` is left of `a -> b`.
fn cross(a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> f32 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// The indices into `points` (at most 256) of their convex hull's vertices, counter-clockwise (Andrew's monotone
/// chain over the points sorted by x then y, repeated positions once); fewer than 3 distinct positions give those
/// positions. Stored per prepared template so that a comparison needs no sort to make the area.
pub(crate) fn vertex_indices(points: &[(f32, f32)]) -> Vec<u8> {
    let at = |k: u8| points.get(usize::from(k)).copied().unwrap_or_default();
    let mut order: Vec<u8> = (0..points.len().min(256)).map(|k| k as u8).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (at(a), at(b));
        a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
    });
    order.dedup_by(|a, b| at(*a) == at(*b));
    if order.len() < 3 {
        return order;
    }
    let mut out = Vec::with_capacity(order.len() + 1);
    let add = |hull: &mut Vec<u8>, start: usize, q: u8| {
        while hull.len() >= start + 2
            && cross(at(hull[hull.len() - 2]), at(hull[hull.len() - 1]), at(q)) <= 0.0
        {
            hull.pop();
        }
        hull.push(q);
    };
    for &q in order.iter() {
        add(&mut out, 0, q);
    }
    out.pop();
    let start = out.len();
    for &q in order.iter().rev() {
        add(&mut out, start, q);
    }
    out.pop();
    out.shrink_to_fit();
    out
}
