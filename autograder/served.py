"""Threads that each own a warm process and serve one queue of jobs, with futures.

The shape of the sandbox pool (a boxed worker per slot) and of the reading helpers (a
parser per thread): a job waits in one queue, the first free thread takes it, and its
caller holds a `concurrent.futures.Future`. A thread owns its process for its whole life,
so the process lives as long as the pool and dies with it.
"""
import queue
import threading
from concurrent.futures import Future


class Served:
    """`count` threads serving `submit`ted jobs with `handle(index, *job)`. Subclasses say
    how a thread warms up (`warm`), serves (`handle`) and ends (`cool`). Use as a context
    manager, so the threads, and what they own, always stop."""

    closed_error = RuntimeError

    def __init__(self, count, name):
        self.closed = False
        self.todo = queue.Queue()
        self.threads = [threading.Thread(target=self._serve, args=(index,), daemon=True,
                                         name=f"{name}{index}") for index in range(count)]
        for thread in self.threads:
            thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def submit(self, *job):
        """Queue one job; a future of what `handle` makes of it."""
        if self.closed:
            raise self.closed_error(f"{type(self).__name__} is closed")
        future = Future()
        self.todo.put((job, future))
        return future

    def close(self):
        """Cancel what has not started and stop the threads; jobs already running finish."""
        self.closed = True
        while True:
            try:
                item = self.todo.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        for _ in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()
        self.threads = []

    def _serve(self, index):
        try:
            self.warm(index)
        except Exception:  # noqa: BLE001 - the first job meets the problem, and says it
            pass
        try:
            while (item := self.todo.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(self.handle(index, *job))
                except Exception as error:  # noqa: BLE001 - the caller's to judge
                    future.set_exception(error)
        finally:
            self.cool(index)

    def warm(self, index):
        """Start what thread `index` owns, before the first job arrives."""

    def handle(self, index, *job):
        raise NotImplementedError

    def cool(self, index):
        """Stop what thread `index` owns."""
