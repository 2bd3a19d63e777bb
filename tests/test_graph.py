"""interplab.graph and starters/mnist-graph: CSV schema and counts, graph <-> model weight equality,
activation flow adds up to the logits, pruning keeps the strongest edges, strongest paths are exact,
bad model.pt / mismatched input shapes give one-line errors."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interplab import graph

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "starters" / "mnist-graph"


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return graph.build_mlp(64, 500, 10)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(1)
    return graph.build_cnn((8, 8), (8, 16), 10)


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 17, size=shape).astype(np.float32)


def test_tables_schema_counts_and_weights_roundtrip_csv(mlp, tmp_path):
    vertices, edges = graph.to_tables(mlp)
    assert list(vertices.columns) == list(graph.VERTEX_COLUMNS)
    assert list(edges.columns) == list(graph.EDGE_COLUMNS)
    assert len(vertices) == 64 + 500 + 10
    assert len(edges) == 64 * 500 + 500 * 10
    graph.write_graph(tmp_path, vertices, edges)
    v, e = graph.read_graph(tmp_path)
    assert v["id"].tolist() == list(range(574))
    assert v.groupby("layer").size().tolist() == [64, 500, 10]
    assert v.loc[v.layer == 0, "bias"].isna().all()
    # ids are layer offset + index
    offsets = {0: 0, 1: 64, 2: 564}
    assert (v["id"] == v["layer"].map(offsets) + v["index"]).all()
    # weights and biases equal the model's exactly (float32 survives the CSV round trip)
    W1, W2 = mlp.fc1.weight.detach().numpy(), mlp.fc2.weight.detach().numpy()
    w = e["weight"].to_numpy(np.float32)
    l1 = e["to_id"] < 564
    fr, to = e["from_id"].to_numpy(), e["to_id"].to_numpy()
    assert np.array_equal(w[l1], W1[to[l1] - 64, fr[l1]])
    assert np.array_equal(w[~l1], W2[to[~l1] - 564, fr[~l1] - 64])
    assert np.array_equal(v.loc[v.layer == 1, "bias"].to_numpy(np.float32), mlp.fc1.bias.detach().numpy())
    assert np.array_equal(v.loc[v.layer == 2, "bias"].to_numpy(np.float32), mlp.fc2.bias.detach().numpy())
    G = graph.to_networkx(v, e)
    assert G.number_of_nodes() == 574 and G.number_of_edges() == len(e)
    assert np.float32(G[3][64 + 7]["weight"]) == W1[7, 3]


def test_activation_flow_sums_to_logits_and_hidden_activations(mlp):
    img = _image((8, 8))
    v, e = graph.activation_flow(mlp, img)
    logits = graph.predict(mlp, [img])[0]
    np.testing.assert_allclose(graph.logits_from_flow(v, e), logits, rtol=1e-5, atol=1e-5)
    out = v[v.layer == 2].sort_values("index")
    np.testing.assert_allclose(out["preactivation"], logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["activation"], logits, rtol=1e-5, atol=1e-5)
    hid = v[v.layer == 1]
    np.testing.assert_allclose(hid["activation"], np.maximum(hid["preactivation"], 0), atol=1e-5)
    np.testing.assert_allclose(e["flow"], e["activation"] * e["weight"], rtol=1e-6, atol=1e-7)
    # inputs are scaled like training
    np.testing.assert_allclose(v.loc[v.layer == 0, "activation"], img.ravel() / mlp.input_scale)


def test_prune_keeps_the_strongest_edges(mlp):
    _, edges = graph.to_tables(mlp)
    kept = graph.prune(edges, 1000)
    assert len(kept) == 1000
    dropped = edges.merge(kept, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(dropped) == len(edges) - 1000
    assert kept["weight"].abs().min() >= dropped["weight"].abs().max()
    assert len(graph.prune(edges, 0.01)) == int(np.ceil(0.01 * len(edges)))
    # per layer: the count applies to each layer's edges, each the strongest of its layer
    vertices, _ = graph.to_tables(mlp)
    per = graph.prune(edges, 50, vertices=vertices)
    last = per.to_id >= 564
    assert last.sum() == 50 and (~last).sum() == 50
    all_last = edges[edges.to_id >= 564]
    assert per[last].weight.abs().min() >= np.sort(all_last.weight.abs().to_numpy())[-50]
    parse_keep = _starter("to_graph.py").parse_keep  # the --prune flag's parser
    assert parse_keep("5%") == 0.05 and parse_keep("2000") == 2000 and parse_keep("0.1") == 0.1
    for bad in (0, -3, 1.5):
        with pytest.raises(ValueError, match="keep must be"):
            graph.prune(edges, bad)
    with pytest.raises(ValueError, match="--prune"):
        parse_keep("many")
    with pytest.raises(KeyError, match="flow"):
        graph.prune(edges, 10, by="flow")


def test_strongest_paths_match_brute_force():
    torch.manual_seed(3)
    m = graph.build_mlp(6, [5, 4], 3)
    v, e = graph.to_tables(m)
    Ws = [layer.weight.detach().numpy().astype(np.float64) for layer in (m.fc1, m.fc2, m.fc3)]
    target = int(v[(v.layer == 3) & (v["index"] == 1)]["id"].iloc[0])
    best = {}
    for i, a, b in itertools.product(range(6), range(5), range(4)):
        s = Ws[0][a, i] * Ws[1][b, a] * Ws[2][1, b]
        if s > best.get(i, (-np.inf,))[0]:
            best[i] = (s, [i, 6 + a, 11 + b, target])
    top = graph.strongest_paths(v, e, target, k=3)
    expected = sorted(best.items(), key=lambda kv: -kv[1][0])[:3]
    assert top["source"].tolist() == [i for i, _ in expected]
    for row, (_, (score, path)) in zip(top.itertuples(), expected):
        assert row.score == pytest.approx(score, rel=1e-5)
        assert row.path == path
    neg = graph.strongest_paths(v, e, target, k=1, sign="negative")
    brute_min = min(Ws[0][a, i] * Ws[1][b, a] * Ws[2][1, b] for i, a, b in itertools.product(range(6), range(5), range(4)))
    assert neg["score"].iloc[0] == pytest.approx(brute_min, rel=1e-5)
    # the reported path's weight product is its score
    for row in top.itertuples():
        w = e.set_index(["from_id", "to_id"])["weight"]
        assert np.prod([w[(u, x)] for u, x in zip(row.path, row.path[1:])]) == pytest.approx(row.score, rel=1e-5)


def test_cnn_channel_graph(cnn):
    v, e = graph.to_tables(cnn)
    assert v.groupby("layer").size().tolist() == [1, 8, 16, 10]
    assert len(e) == 1 * 8 + 8 * 16 + 16 * 10
    assert {"from_id", "to_id", "weight", "kernel_norm"} <= set(e.columns)
    k2 = cnn.conv2.weight.detach()
    conv2 = e[(e.to_id >= 9) & (e.to_id < 25)]
    np.testing.assert_array_equal(conv2["weight"].to_numpy(), k2.sum(dim=(2, 3)).numpy().ravel())
    np.testing.assert_allclose(conv2["kernel_norm"], k2.flatten(2).norm(dim=2).numpy().ravel(), rtol=1e-6)
    img = _image((8, 8), seed=2)
    vf, ef = graph.activation_flow(cnn, img)
    np.testing.assert_allclose(graph.logits_from_flow(vf, ef), graph.predict(cnn, [img])[0], rtol=1e-5, atol=1e-5)
    # conv flows add up to each channel's mean pre-activation map
    with torch.no_grad():
        pre = cnn.conv1(cnn.unflatten(torch.from_numpy(img[None] / cnn.input_scale)))
    ch1 = vf[vf.layer == 1].sort_values("index")
    np.testing.assert_allclose(ch1["preactivation"], pre.mean(dim=(0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)


def test_save_load_roundtrip_and_bare_state_dict(mlp, tmp_path):
    p = graph.save_model(mlp, tmp_path / "model.pt")
    m2 = graph.load_model(p)
    for a, b in zip(mlp.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert m2.image_shape == (8, 8) and m2.sizes == [64, 500, 10]
    # the original repository saved a bare state_dict of two Linear layers
    torch.save({"l1.weight": torch.randn(500, 784), "l1.bias": torch.zeros(500),
                "l2.weight": torch.randn(10, 500), "l2.bias": torch.zeros(10)}, tmp_path / "bare.pt")
    bare = graph.load_model(tmp_path / "bare.pt")
    assert bare.sizes == [784, 500, 10] and bare.image_shape == (28, 28)


def test_malformed_model_file_errors(mlp, tmp_path):
    with pytest.raises(graph.ModelFileError, match="no such file; run train.py"):
        graph.load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(graph.ModelFileError, match="not a readable PyTorch checkpoint"):
        graph.load_model(tmp_path / "junk.pt")
    torch.save(mlp, tmp_path / "pickled.pt")  # a whole pickled module is refused (weights_only), with advice
    with pytest.raises(graph.ModelFileError, match=r"pickled Python object.*state_dict"):
        graph.load_model(tmp_path / "pickled.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(graph.ModelFileError, match="holds a list"):
        graph.load_model(tmp_path / "list.pt")
    torch.save({"format": graph.CHECKPOINT_FORMAT, "arch": "mlp"}, tmp_path / "partial.pt")
    with pytest.raises(graph.ModelFileError, match="lacks sizes"):
        graph.load_model(tmp_path / "partial.pt")
    graph.save_model(mlp, tmp_path / "model.pt")
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(graph.ModelFileError, match="not a readable PyTorch checkpoint"):
        graph.load_model(tmp_path / "truncated.pt")
    ckpt = torch.load(tmp_path / "model.pt", weights_only=True)
    ckpt["sizes"] = [64, 300, 10]
    torch.save(ckpt, tmp_path / "wrong.pt")
    with pytest.raises(graph.ModelFileError, match=r"do not fit a mlp with sizes \[64, 300, 10\].*size mismatch") as err:
        graph.load_model(tmp_path / "wrong.pt")
    assert "\n" not in str(err.value)


def test_mismatched_input_shape_errors(mlp, tmp_path):
    with pytest.raises(graph.InputShapeError, match=r"shape \(28, 28\) but the model takes 8x8"):
        graph.activation_flow(mlp, np.zeros((28, 28)))
    with pytest.raises(graph.InputShapeError, match="one image"):
        graph.activation_flow(mlp, np.zeros((2, 8, 8)))
    np.save(tmp_path / "big.npy", np.zeros((28, 28)))
    with pytest.raises(graph.InputShapeError, match=r"\(28, 28\) but the model takes \(8, 8\)"):
        graph.read_image(tmp_path / "big.npy", mlp.image_shape)
    # a flat 64-vector is accepted as an 8x8 image
    v, _ = graph.activation_flow(mlp, np.ones(64) * 16)
    assert np.allclose(v.loc[v.layer == 0, "activation"], 16 / mlp.input_scale)


def test_trained_model_and_influence(tmp_path):
    from interplab import data

    train_df = data.load("mnist", split="train")
    test_df = data.load("mnist", split="test")
    model = graph.train(train_df, progress=False)
    n_in = int(np.prod(train_df["image"].iloc[0].shape))
    assert model.sizes == [n_in, 500, 10]
    assert graph.accuracy(model, test_df) > 0.85
    infl = graph.class_influence(model, test_df, test_df["label"])
    assert infl.shape == (500, 10)
    # last hidden layer: influence is activation x weight, and zeroing units drops the logit by exactly their sum
    x3 = graph.images_to_tensor(test_df[test_df.label == 3], model.input_scale, model.image_shape)
    h = torch.relu(model.fc1(x3.flatten(1)))
    np.testing.assert_allclose(infl[3], (h.mean(0) * model.fc2.weight[3]).detach().numpy(), rtol=1e-4, atol=1e-6)
    abl = graph.ablation_test(model, test_df, k=10, n_random=5)
    np.testing.assert_allclose(abl["estimated drop"], abl["drop (top-k)"], rtol=1e-4, atol=1e-5)
    # the same drop, measured by zeroing the weights through ablate() and a saved and reloaded checkpoint
    c, imgs = 3, test_df[test_df.label == 3]
    m = graph.load_model(graph.save_model(graph.ablate(model, infl[c].nlargest(10).index), tmp_path / "m.pt"))
    drop = graph.predict(model, imgs)[:, c].mean() - graph.predict(m, imgs)[:, c].mean()
    assert drop == pytest.approx(abl.loc[c, "drop (top-k)"], rel=1e-4)
    assert (abl["drop (top-k)"] > abl["drop (random k)"]).all()


def test_ablation_test_in_a_deeper_net_where_influence_is_an_estimate():
    from interplab import data

    train_df, test_df = data.load("mnist", split="train"), data.load("mnist", split="test")
    deep = graph.train(train_df, hidden=[64, 32], epochs=10, progress=False)
    abl = graph.ablation_test(deep, test_df, k=8, hidden=0, n_random=10, seed=1)
    assert list(abl.index) == list(range(10))
    gap = (abl["estimated drop"] - abl["drop (top-k)"]).abs()
    assert gap.max() > 1e-3  # a ReLU layer follows: the estimate is not the real drop
    assert (abl["drop (top-k)"] > abl["random 95th pct"]).mean() >= 0.8
    assert abl["accuracy (top-k zeroed)"].mean() < abl["accuracy (random k zeroed)"].mean()
    with pytest.raises(ValueError, match="hidden layer 2 does not exist: this MLP has 2"):
        graph.class_influence(deep, test_df, hidden=2)
    with pytest.raises(ValueError, match="need an MLP"):
        graph.ablation_test(graph.build_cnn((8, 8)), test_df)


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _starter(script):
    """A starter script imported as a module (its code runs as under `python script ...`, minus main())."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"starter_{Path(script).stem}", STARTER / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script, *args, cwd, capsys=None):
    """Run a starter script's main(argv) in this process (same code as `python script ...`, no torch re-import)."""
    module = _starter(script)
    capsys.readouterr()
    rc = module.main(list(args))
    out = capsys.readouterr()
    return _Result(rc, out.out, out.err)


def test_starter_scripts_run_as_programs(tmp_path):
    """`python to_graph.py --help` works from any folder (the scripts import only the installed kit)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, str(STARTER / "to_graph.py"), "--model", str(tmp_path / "none.pt")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such file; run train.py first" in r.stderr
    assert not (tmp_path / "vertices.csv").exists()


def test_starter_scripts_end_to_end(tmp_path, capsys):
    out = tmp_path / "res"
    r = _run("train.py", "--max-train", "400", "--epochs", "2", "--hidden", "50", "--out", str(out), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and (out / "model.pt").is_file()
    r = _run("to_graph.py", "--model", str(out / "model.pt"), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 0, r.stderr
    v, e = graph.read_graph(out)
    n_in = v.groupby("layer").size()[0]
    assert v.groupby("layer").size().tolist() == [n_in, 50, 10] and len(e) == n_in * 50 + 50 * 10
    model = graph.load_model(out / "model.pt")
    W1 = model.fc1.weight.detach().numpy()
    first = e[e.to_id < n_in + 50]
    assert np.array_equal(first["weight"].to_numpy(np.float32), W1[first.to_id - n_in, first.from_id])

    flow_dir = out / "flow"
    r = _run("to_graph.py", "--model", str(out / "model.pt"), "--input", "0", "--prune", "200", "--out", str(flow_dir), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 0, r.stderr
    vf, ef = graph.read_graph(flow_dir)
    assert len(ef) == 200 and {"flow", "activation"} <= set(ef.columns) and "preactivation" in vf.columns
    _, full = graph.activation_flow(model, _test_image(0))
    assert ef["flow"].abs().min() >= np.sort(np.abs(full["flow"].to_numpy()))[-200] - 1e-6

    # a mismatched image and a malformed model.pt: one-line error, exit 2, earlier CSVs untouched
    before = (out / "edges.csv").read_bytes()
    np.save(tmp_path / "big.npy", np.zeros((30, 30)))
    r = _run("to_graph.py", "--model", str(out / "model.pt"), "--input", str(tmp_path / "big.npy"), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 2 and "error:" in r.stderr and "(30, 30)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    r = _run("to_graph.py", "--model", str(tmp_path / "bad.pt"), "--out", str(out), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 2 and "not a readable PyTorch checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (out / "edges.csv").read_bytes() == before


def _test_image(i):
    from interplab import data

    return data.load("mnist", split="test")["image"].iloc[i]


def test_starter_cnn_option(tmp_path, capsys):
    out = tmp_path / "cnn"
    r = _run("train.py", "--arch", "cnn", "--max-train", "300", "--epochs", "1", "--out", str(out), cwd=tmp_path, capsys=capsys)
    assert r.returncode == 0, r.stderr
    r = _run("to_graph.py", "--model", str(out / "model.pt"), "--input", "3", cwd=tmp_path, capsys=capsys)
    assert r.returncode == 0, r.stderr
    v, e = graph.read_graph(out)
    assert v.groupby("layer").size().tolist() == [1, 8, 16, 10]
    assert "kernel_norm" in e.columns and len(e) == 8 + 128 + 160
    model = graph.load_model(out / "model.pt")
    np.testing.assert_allclose(graph.logits_from_flow(v, e), graph.predict(model, [_test_image(3)])[0], rtol=1e-4, atol=1e-4)


def test_backbone_is_a_connected_drawing_subgraph(mlp):
    v, e = graph.activation_flow(mlp, _image((8, 8), seed=5))
    for by, sign in (("weight", "abs"), ("flow", "positive")):
        b = graph.backbone(v, e, top=20, fan_in=3, by=by, sign=sign)
        G = graph.to_networkx(v, b, drop_isolated=True)
        # every kept edge lies on a complete input -> class path
        assert graph.on_paths(G).number_of_edges() == G.number_of_edges() == len(b)
        into_out = b[b.to_id >= 564]
        assert len(into_out) == 20
        cands = e[e.to_id >= 564][by].to_numpy()
        ranked = np.abs(cands) if sign == "abs" else cands
        assert (np.abs(into_out[by]) if sign == "abs" else into_out[by]).min() >= np.sort(ranked)[-20]
        assert (b[b.to_id < 564].groupby("to_id").size() <= 3).all()
        if sign == "positive":
            assert (b[by] > 0).all()
    with pytest.raises(ValueError, match="sign"):
        graph.backbone(v, e, sign="up")


def test_checkpoints_of_the_sequential_nets_still_load(tmp_path):
    """model.pt files written when the nets were an nn.Sequential with attributes load into MLP / ConvNet unchanged."""
    from collections import OrderedDict

    from torch import nn

    torch.manual_seed(4)
    seq_mlp = nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("fc1", nn.Linear(64, 20)), ("relu1", nn.ReLU()),
                                         ("fc2", nn.Linear(20, 10))]))
    seq_cnn = nn.Sequential(OrderedDict([("unflatten", nn.Unflatten(1, (1, 8))), ("conv1", nn.Conv2d(1, 4, 3, padding=1)),
                                         ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2, ceil_mode=True)),
                                         ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 10))]))
    imgs = np.stack([_image((8, 8), seed=s) for s in range(4)])
    for arch, seq, sizes, channels, cls in (("mlp", seq_mlp, [64, 20, 10], [], graph.MLP),
                                            ("cnn", seq_cnn, [1, 4, 10], [4], graph.ConvNet)):
        torch.save({"format": graph.CHECKPOINT_FORMAT, "version": 1, "arch": arch, "sizes": sizes, "channels": channels,
                    "image_shape": [8, 8], "input_scale": 16.0, "meta": {"epochs": 2}, "state_dict": seq.state_dict()},
                   tmp_path / f"{arch}.pt")
        m = graph.load_model(tmp_path / f"{arch}.pt")
        assert isinstance(m, cls) and m.arch == arch and m.sizes == sizes and m.image_shape == (8, 8)
        assert m.input_scale == 16.0 and m.train_info == {"epochs": 2}
        with torch.no_grad():
            expected = seq(torch.from_numpy(imgs / 16.0).float()).numpy()
        np.testing.assert_array_equal(graph.predict(m, imgs), expected)
        assert list(m.state_dict()) == list(seq.state_dict())
