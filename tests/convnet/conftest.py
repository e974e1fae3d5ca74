import pytest


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small tensors: threads only add overhead and
    contend with other jobs), restored afterwards."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
