"""Runs the named test modules (unittest, verbose) against the target run.sh
describes in the environment, and ends with a line run.sh adds up:

    result: passed=N failed=N skipped=N

Usage: python3 runtests.py test_redispy test_django ...
"""

import os
import sys
import unittest


class CountingResult(unittest.TextTestResult):
    """Counts passes itself: a module or class whose setUp skips or fails
    adds a skip or an error without running a test."""

    passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(names):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    suite = unittest.defaultTestLoader.loadTestsFromNames(names)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print(f"result: passed={result.passed} failed={failed} skipped={skipped}", flush=True)
    return 0 if result.wasSuccessful() and result.passed + skipped > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
