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
    /// The convex hull of `points` (Andrew's monotone chain).
    pub(crate) fn of(points: impl Iterator<Item = (f32, f32)>) -> Self {
        let mut p: Vec<(f32, f32)> = points.collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        p.dedup();
        if p.len() < 3 {
            return Self {
                vertices: p,
                planes: Vec::new(),
            };
        }
        let mut hull: Vec<(f32, f32)> = Vec::with_capacity(2 * p.len());
        for pass in [&p[..], &p.iter().rev().copied().collect::<Vec<_>>()[..]] {
            let start = hull.len();
            for &q in pass {
                while hull.len() >= start + 2
                    && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
                {
                    hull.pop();
                }
                hull.push(q);
            }
            hull.pop();
        }
        let n = hull.len();
        let planes = (0..n)
            .filter_map(|i| {
                let (a, b) = (hull[i], hull[(i + 1) % n]);
                let length = (b.0 - a.0).hypot(b.1 - a.1);
                // Left of a -> b is inside for a counter-clockwise hull.
                (length > 0.0).then(|| {
                    let (nx, ny) = (-(b.1 - a.1) / length, (b.0 - a.0) / length);
                    (nx, ny, nx * a.0 + ny * a.1)
                })
            })
            .collect();
        Self {
            vertices: hull,
            planes,
        }
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
