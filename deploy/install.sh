#!/bin/sh
# Install rsbridge from a built wheel into a new virtual environment, with exactly the
# dependency versions of the lock, every file checked against its hash. The container image
# (deploy/Containerfile) runs this script, the test suite runs it into a temporary directory
# (tests/test_packaging.py), and a host installs with it for the systemd unit:
#
#     python3 dev.py wheel
#     deploy/install.sh dist/rsbridge-VERSION-py3-none-any.whl requirements/lock.txt /opt/rsbridge
#
# PYTHON picks the interpreter (default python3, 3.11 or newer). The prefix must not exist yet:
# an upgrade installs into a new prefix and switches over (docs/operations.md).
set -eu

if [ "$#" -ne 3 ]; then
    echo "usage: $0 WHEEL LOCK PREFIX" >&2
    exit 2
fi
wheel=$1
lock=$2
prefix=$3
python=${PYTHON:-python3}

if [ -e "$prefix" ]; then
    echo "error: $prefix exists; install into a new prefix" >&2
    exit 1
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "error: rsbridge needs Python 3.11 or newer ($python)" >&2
    exit 1
}
"$python" -m venv "$prefix"
pip="$prefix/bin/python -m pip --disable-pip-version-check"
# The lock first (exact versions, hashes required), then rsbridge, which then needs nothing more.
$pip install --quiet --require-hashes --no-deps -r "$lock"
$pip install --quiet --no-deps "$wheel"
$pip check
"$prefix/bin/rsbridge" --version
