"""The training-curve figure: panels, and the kNN baselines drawn as horizontal lines."""

from matplotlib.axes import Axes

from pyro_vje.training.figures import plot_training_curves


def test_knn_panel_draws_the_baselines_as_horizontal_lines(tmp_path, monkeypatch):
    drawn = []
    real = Axes.axhline

    def spy(self, y=0, *args, **kwargs):
        drawn.append((self.get_title(), y, kwargs.get("label")))
        return real(self, y, *args, **kwargs)

    monkeypatch.setattr(Axes, "axhline", spy)
    rows = [{"epoch": 1, "loss": 3.0, "knn_z": 0.5, "knn_mu": 0.4}, {"epoch": 2, "loss": 2.0, "knn_z": 0.6}]
    path = plot_training_curves(
        rows, tmp_path, baselines={"knn_raw_pixels": 0.91, "knn_z_random_init": 0.83}
    )
    assert path.stat().st_size > 1000
    ys = {round(y, 6): label for title, y, label in drawn if title.startswith("kNN")}
    assert ys == {0.91: "raw pixels", 0.83: "random-init z"}
    drawn.clear()
    plot_training_curves(rows, tmp_path)  # without baselines (resumed old runs): no lines
    assert drawn == []
