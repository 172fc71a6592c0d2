import pytest

import peat_mesh

SECRET = bytes([7]) * 32


@pytest.fixture
def open_node(tmp_path):
    nodes = []

    def make(name="n", secret=SECRET):
        n = peat_mesh.SyncNode.open(str(tmp_path / name), "py", secret, listen="127.0.0.1:0")
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.close()
