"""numba_threads restores numba's thread count however its block ends."""

import numba
import pytest

from skhash._threads import numba_threads


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread: nothing changes")
def test_interrupt_just_after_the_thread_count_changed_restores_it(monkeypatch):
    # Ctrl-C during numba.set_num_threads is raised when its C call returns, with the
    # count already changed: the block must restore it all the same
    previous = numba.get_num_threads()
    real = numba.set_num_threads
    calls = []

    def set_then_interrupted(n):
        real(n)
        calls.append(n)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(numba, "set_num_threads", set_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with numba_threads(1):
            pass  # pragma: no cover
    assert calls[0] == 1
    assert numba.get_num_threads() == previous


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_an_error_inside_the_block_restores_the_count(error):
    previous = numba.get_num_threads()
    with pytest.raises(error):
        with numba_threads(1) as n_threads:
            assert n_threads == 1 and numba.get_num_threads() == 1
            raise error
    assert numba.get_num_threads() == previous
