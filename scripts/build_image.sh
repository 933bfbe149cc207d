#!/usr/bin/env bash
# Build the project's image and check it, where Docker Hub cannot be reached and `podman run`
# does not work (CI and the team's machines):
#   1. a python:3.11-slim equivalent from Debian bookworm's packages (mmdebstrap: python3 3.11 and
#      its venv module), trusting the CA certificates this machine trusts, as its own pip does;
#   2. the Dockerfile on it (podman build --isolation chroot, BASE as a build argument);
#   3. the image mounted and checked with chroot: no tests or caches inside; the seed CLI's --help;
#      `python -m tools.predict` on a small packaged model and three demo images gives exactly
#      the labels and probabilities the same command gives on the host.
# Needs root and Debian's podman, buildah, mmdebstrap and uidmap; run from the project's venv.
#   scripts/build_image.sh [TAG]        (default localhost/multilabel-trainer:ci)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/multilabel-trainer:ci}
base=localhost/bookworm-python311:ci
work=$(mktemp -d)
mounted=""
cleanup() {
    if [ -n "$mounted" ]; then podman image unmount "$tag" >/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
seconds() { echo $(( $(date +%s) - $1 )); }

start=$(date +%s)
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --customize-hook='for c in /usr/local/share/ca-certificates/*.crt; do [ -f "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; chroot "$1" update-ca-certificates >/dev/null 2>&1' \
    bookworm "$work/base.tar" "deb http://deb.debian.org/debian bookworm main"
podman import --quiet --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
    "$work/base.tar" "$base" >/dev/null
echo "base image $base from Debian bookworm: $(seconds "$start") s"

start=$(date +%s)
podman build --quiet --isolation chroot --build-arg "BASE=$base" -t "$tag" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $(seconds "$start") s, $((size / 1000000)) MB"

mnt=$(podman image mount "$tag")
mounted=yes
for unwanted in app/tests app/.dvc/cache app/.venv app/.git app/models app/outputs; do
    if [ -e "$mnt/$unwanted" ]; then echo "the image holds /$unwanted" >&2; exit 1; fi
done
if find "$mnt/app" -name __pycache__ -o -name .pytest_cache | grep -q .; then
    echo "the image holds Python caches under /app" >&2; exit 1
fi

# inside the image: its own /proc and /dev, and the check's files at /mnt, in a private mount
# namespace that ends with the command
inside() {
    unshare --mount sh -c 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
        mount --bind "$1" "$0/mnt" && shift &&
        exec chroot "$0" sh -c "cd /app && exec \"\$@\"" sh "$@"' "$mnt" "$work" "$@"
}

inside /opt/venv/bin/python -m tools.cli --help > "$work/help.txt"
grep -q -- "--data_dir" "$work/help.txt" || { echo "the seed CLI's --help says no --data_dir" >&2; exit 1; }

python tests/helpers/config_corpus.py "$work/corpus" > /dev/null 2>&1
python -c "import sys; from stages.common.data.demo_data import write_demo_dataset; write_demo_dataset(sys.argv[1], {'test': 3}, seed=5)" "$work/demo"
images=$(cd "$work" && ls demo/images/*)
python -m tools.predict "$work/corpus/base" $(for i in $images; do echo "$work/$i"; done) --json \
    | sed "s|$work/||g" > "$work/host.json"
inside /opt/venv/bin/python -m tools.predict /mnt/corpus/base $(for i in $images; do echo "/mnt/$i"; done) \
    --json | sed 's|/mnt/||g' > "$work/image.json"
if [ ! -s "$work/host.json" ] || ! cmp -s "$work/host.json" "$work/image.json"; then
    echo "predict inside the image differs from the host:" >&2
    diff "$work/host.json" "$work/image.json" >&2
    exit 1
fi
echo "predict inside the image = on the host, on $(echo $images | wc -w) demo images; --help runs"
