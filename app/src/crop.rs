//! The square cut of a picture the user makes an avatar of: how far they zoomed in and
//! which part sits in the frame. Plain arithmetic, so the rules are tested natively; the
//! crop dialog (`ui::avatar_editor`) draws it and feeds it the user's drags and keys.

/// How far in the user may zoom: the square shows a quarter of the short side.
pub const MAX_ZOOM: f64 = 4.0;

/// A square inside a `width` × `height` picture, in the picture's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    width: f64,
    height: f64,
    zoom: f64,
    /// The square's centre.
    x: f64,
    y: f64,
}

/// Where the picture sits in the frame, as CSS percentages of the frame's side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub width: f64,
    pub left: f64,
    pub top: f64,
}

impl Crop {
    /// The largest square in the middle of the picture.
    pub fn new(width: f64, height: f64) -> Crop {
        let (width, height) = (width.max(1.0), height.max(1.0));
        Crop {
            width,
            height,
            zoom: 1.0,
            x: width / 2.0,
            y: height / 2.0,
        }
    }

    pub fn zoom(&self) -> f64 {
        self.zoom
    }

    /// The square's side in the picture's pixels.
    pub fn side(&self) -> f64 {
        self.width.min(self.height) / self.zoom
    }

    /// Zooms to `zoom` (1 to [`MAX_ZOOM`]) around the square's centre.
    pub fn set_zoom(&mut self, zoom: f64) {
        self.zoom = if zoom.is_finite() {
            zoom.clamp(1.0, MAX_ZOOM)
        } else {
            1.0
        };
        self.clamp();
    }

    /// Moves the picture under the frame by `dx`, `dy` frame sides (dragging it right by
    /// the frame's full width brings its part one side further left into view). The square
    /// never leaves the picture.
    pub fn drag(&mut self, dx: f64, dy: f64) {
        let side = self.side();
        if dx.is_finite() && dy.is_finite() {
            self.x -= dx * side;
            self.y -= dy * side;
        }
        self.clamp();
    }

    fn clamp(&mut self) {
        let half = self.side() / 2.0;
        self.x = self.x.clamp(half, self.width - half);
        self.y = self.y.clamp(half, self.height - half);
    }

    /// The square to cut: left, top, side (picture pixels).
    pub fn source(&self) -> (f64, f64, f64) {
        let side = self.side();
        (self.x - side / 2.0, self.y - side / 2.0, side)
    }

    /// Where to draw the whole picture so that the square fills the frame.
    pub fn placement(&self) -> Placement {
        let (left, top, side) = self.source();
        Placement {
            width: self.width / side * 100.0,
            left: -left / side * 100.0,
            top: -top / side * 100.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_with_the_largest_square_in_the_middle() {
        assert_eq!(Crop::new(900.0, 600.0).source(), (150.0, 0.0, 600.0));
        assert_eq!(Crop::new(600.0, 900.0).source(), (0.0, 150.0, 600.0));
        let p = Crop::new(900.0, 600.0).placement();
        assert_eq!((p.width, p.left, p.top), (150.0, -25.0, 0.0));
    }

    #[test]
    fn dragging_moves_the_square_but_never_off_the_picture() {
        let mut c = Crop::new(900.0, 600.0);
        // The picture dragged a third of the frame to the right: its left part shows.
        c.drag(1.0 / 3.0, 0.0);
        assert_eq!(c.source(), (0.0, 0.0, 600.0));
        // Further than the edge stops at the edge; vertically there is no room at all.
        c.drag(5.0, 5.0);
        assert_eq!(c.source(), (0.0, 0.0, 600.0));
        c.drag(-10.0, -1.0);
        assert_eq!(c.source(), (300.0, 0.0, 600.0));
    }

    #[test]
    fn zooming_keeps_the_centre_and_stays_in_bounds() {
        let mut c = Crop::new(1000.0, 1000.0);
        c.set_zoom(2.0);
        assert_eq!(c.source(), (250.0, 250.0, 500.0));
        c.drag(0.5, 0.5);
        assert_eq!(c.source(), (0.0, 0.0, 500.0));
        // Zooming out from a corner pulls the square back inside.
        c.set_zoom(1.0);
        assert_eq!(c.source(), (0.0, 0.0, 1000.0));
        c.set_zoom(10.0);
        assert_eq!(c.zoom(), MAX_ZOOM);
        c.set_zoom(f64::NAN);
        assert_eq!(c.zoom(), 1.0);
        c.drag(f64::INFINITY, 0.0);
        assert_eq!(c.source(), (0.0, 0.0, 1000.0));
    }

    #[test]
    fn a_degenerate_picture_does_not_divide_by_zero() {
        let c = Crop::new(0.0, 0.0);
        let p = c.placement();
        assert!(p.width.is_finite() && p.left.is_finite() && p.top.is_finite());
    }
}
