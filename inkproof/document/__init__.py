"""Document pages: synthetic scanned pages with ground truth, and (later) detection, segmentation and cleaning."""
