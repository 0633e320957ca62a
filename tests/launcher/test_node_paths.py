"""A trial on a node whose Ray temp dir differs from the head's finds the app's configs in its own node's copy
of the job's working dir (issue 20: every trial on such a worker failed with MissingConfigException naming
the head's path)."""

from __future__ import annotations

import shutil
import sys

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import HydraContext, RunMode

from cluster.launcher.node_paths import hydra_context_on_this_node, on_this_node

PACKAGE = "_ray_pkg_0123abcd"


def unpacked(temp_dir, conf_text: str):
    folder = temp_dir / "session_1" / "runtime_resources" / "working_dir_files" / PACKAGE
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "config.yaml").write_text(conf_text)
    return folder


def test_a_path_in_the_heads_copy_is_found_in_this_nodes_copy(tmp_path, monkeypatch):
    head = unpacked(tmp_path / "head-tmp", "lr: 1\n")
    here = unpacked(tmp_path / "ssd-tmp", "lr: 1\n")
    monkeypatch.setattr(sys, "path", [str(here), *sys.path])
    shutil.rmtree(tmp_path / "head-tmp")  # the head's temp dir is not on this node
    assert on_this_node(str(head / "conf")) == str(here / "conf")
    assert on_this_node(str(here / "conf")) == str(here / "conf")  # exists: unchanged
    assert on_this_node("/nowhere/else/conf") == "/nowhere/else/conf"  # not a Ray copy: unchanged
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(here)])
    assert on_this_node(str(head / "conf")) == str(head / "conf")  # no copy here: unchanged


def test_the_sweeps_config_loader_composes_from_this_nodes_copy(tmp_path, monkeypatch):
    head = unpacked(tmp_path / "head-tmp", "where: head\n")
    here = unpacked(tmp_path / "ssd-tmp", "where: this node\n")
    try:
        with initialize_config_dir(config_dir=str(head / "conf"), version_base="1.3"):
            context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=None)
            assert hydra_context_on_this_node(context) is context  # the head's own copy: nothing to map
            shutil.rmtree(tmp_path / "head-tmp")
            monkeypatch.setattr(sys, "path", [str(here), *sys.path])
            local = hydra_context_on_this_node(context)
            config = local.config_loader.load_configuration("config", [], RunMode.MULTIRUN)
            assert config.where == "this node"
            assert str(head) in str(context.config_loader.get_search_path())  # the sweep's own is unchanged
    finally:
        GlobalHydra.instance().clear()
