"""Prefect 1.4.1's ``TestDefaultFromAttrs`` (``tests/utilities/test_tasks.py``), ported.

The tasks subclass the shims' ``SecretBase`` (a Prefect 1 ``Task``), the
decorator is the shims' ``defaults_from_attrs``; every original case and
assertion is here. Added below them: the same semantics hold when Prefect 3
runs the task inside a flow, where Prefect fills in every default before it
calls ``run``.
"""

from __future__ import annotations

from typing import Any

import pytest

from secret_tasks.prefect1 import SecretBase as Task
from secret_tasks.prefect1 import defaults_from_attrs
from tests.servers.prefect_api import PrefectAPI


class TestDefaultFromAttrs:
    @pytest.fixture
    def xtask(self) -> Any:
        class A(Task):
            def __init__(self, x: Any = None) -> None:
                self.x = x
                super().__init__()

            @defaults_from_attrs("x")
            def run(self, x: Any = None) -> Any:
                "Lil doc"
                return x

        return A

    @pytest.fixture
    def multitask(self) -> Any:
        class B(Task):
            def __init__(self, x: Any = None, y: Any = None) -> None:
                self.x = x
                self.y = y
                super().__init__()

            @defaults_from_attrs("x")
            def run(self, x: Any = None, y: Any = None) -> Any:
                return x, y

        return B

    def test_pulls_from_attr_if_not_provided_at_runtime(self, xtask: Any) -> None:
        a = xtask(5)
        assert a.run() == 5

    def test_runtime_takes_precedence(self, xtask: Any) -> None:
        a = xtask(5)
        assert a.run(x=6) == 6

    def test_even_none_at_runtime_takes_precedence(self, xtask: Any) -> None:
        """``None`` isn't some ambiguous special case: keywords provided at runtime
        _always_ take precedence."""
        a = xtask(5)
        assert a.run(x=None) is None

    def test_doc_is_unaffected(self, xtask: Any) -> None:
        assert xtask.run.__doc__ == "Lil doc"

    def test_args_not_listed_are_unaffected(self, multitask: Any) -> None:
        b = multitask(x=1, y=2)
        assert b.run() == (1, None)

    def test_works_with_multiple_args(self, multitask: Any) -> None:
        b = multitask(x=1, y=2)
        assert b.run(y=3, x=55) == (55, 3)

    def test_works_with_mutiple_attrs(self) -> None:
        class TestTask(Task):
            def __init__(self, x: Any = None, y: Any = None) -> None:
                self.x = x
                self.y = y
                super().__init__()

            @defaults_from_attrs("x", "y")
            def run(self, x: Any = None, y: Any = None) -> Any:
                return x, y

        task = TestTask(x=1, y=2)
        assert task.run() == (1, 2)
        assert task.run(x=4) == (4, 2)
        assert task.run(y=99) == (1, 99)
        assert task.run(x=None, y=None) == (None, None)

    def test_raises_if_attr_wasnt_set_at_init(self) -> None:
        class Forgot(Task):
            @defaults_from_attrs("x")
            def run(self, x: Any = None) -> Any:
                return x

        t = Forgot()
        with pytest.raises(AttributeError, match="no attribute 'x'"):
            t.run()


def test_the_same_semantics_inside_a_prefect_3_flow(prefect_api: PrefectAPI) -> None:
    """Prefect 3 passes every default explicitly; the shim still tells given from not given."""
    from prefect import flow

    class TestTask(Task):
        def __init__(self, x: Any = None, y: Any = None, **kwargs: Any) -> None:
            self.x = x
            self.y = y
            super().__init__(**kwargs)

        @defaults_from_attrs("x", "y")
        def run(self, x: Any = None, y: Any = "run default") -> Any:
            return x, y

    @flow
    def calls() -> list[Any]:
        task = TestTask(x=1, y=2, name="pair")
        return [task(), task(x=4), task(y=99), task(x=None, y=None), task(7)]

    assert calls() == [(1, 2), (4, 2), (1, 99), (None, None), (7, 2)]
