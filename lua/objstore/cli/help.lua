--- The help texts of `objstore` and each of its commands.
local _M = {}

_M.main = [==[
Usage: objstore COMMAND [options] ARGS

Object storage from the shell: Amazon S3, S3-compatible stores (s3://) and
Alibaba Cloud OSS (oss://). Local paths are plain paths; "-" is stdin/stdout.

Commands:
  ls [URL]            list buckets, or objects under a prefix
  cp SRC DST          copy a file or object (-r: a directory or prefix)
  mv SRC DST          copy, then remove the source
  rm URL              delete an object (-r: every object under a prefix)
  sync SRC DST        make DST like SRC (local <-> remote, remote -> remote)
  check SRC DST       report what differs, changing nothing
  cat URL             write an object to stdout
  stat URL            show an object's metadata
  mb URL              make a bucket
  rb URL              remove a bucket (--force empties it first)
  presign URL         print a presigned URL
  du URL              total size and count under a prefix

Options for every command:
  --profile NAME      profile of ~/.aws/config and ~/.aws/credentials
  --endpoint URL      endpoint (default: AWS_ENDPOINT_URL / OSS_ENDPOINT, or the provider's)
  --region NAME       region (default: AWS_REGION / OSS_REGION, or the profile's)
  --concurrency N     requests in flight (default 16)
  --part-size SIZE    multipart part size (e.g. 8M)
  --json              one JSON object per line on stdout (progress and a summary)
  -q, --quiet         no progress, no summary
  -h, --help          this text; `objstore COMMAND --help` for a command

Credentials come from the library's default chain: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (OSS_ACCESS_KEY_ID /
OSS_ACCESS_KEY_SECRET for oss://), ~/.aws files, and the instance/container
providers.

Progress goes to stderr: one redrawn line on a terminal; a plain line every
5 s otherwise (OBJSTORE_PROGRESS_INTERVAL); JSON stats with --json.

Exit codes: 0 success; 1 some operations failed (each on stderr with its key);
2 usage error; 3 --max-delete exceeded (nothing deleted); 130 interrupted
(SIGINT: the transfer in flight stops, temporary download files are removed,
a multipart upload in flight is left incomplete on the server; a bucket
lifecycle rule for incomplete uploads removes it). A full disk stops the run
at once (exit 1).
]==]

_M.ls = [==[
Usage: objstore ls [s3://BUCKET[/PREFIX]] [-r]
  Without a URL: the buckets. With one: objects and common prefixes under
  PREFIX ("PRE name/" lines); -r lists every object below it.
  --json: {"key":...,"size":...,"etag":...,"last_modified":...} per line.
]==]

_M.cp = [==[
Usage: objstore cp SRC DST [-r] [--include GLOB] [--exclude GLOB] [--dry-run]
  SRC, DST: a local path, s3://bucket/key, oss://bucket/key, or "-":
    objstore cp file.txt s3://b/dir/       upload (key dir/file.txt)
    objstore cp s3://b/key ./local          download (temp file, renamed when complete)
    objstore cp s3://b/a s3://b/b           server-side copy
    cat big.log | objstore cp - s3://b/k    stream stdin (unknown size, bounded memory)
    objstore cp s3://b/k -                  stream to stdout
  -r copies a directory or prefix: what is missing or differs is copied, as
  `sync` without --delete. The file mtime is stored in `mtime` metadata.
]==]

_M.mv = [==[
Usage: objstore mv SRC DST [-r]
  cp, then remove the source (only when the copy succeeded).
]==]

_M.rm = [==[
Usage: objstore rm s3://BUCKET/KEY [-r] [--include GLOB] [--exclude GLOB] [--dry-run]
  -r deletes every object under the prefix KEY/ (batches of 1000).
]==]

_M.sync = [==[
Usage: objstore sync SRC DST [options]
  Makes DST like SRC: local -> remote, remote -> local, remote -> remote
  (server-side on one endpoint). Compares size and mtime by default.
  --checksum           compare content (MD5 / stored CRC-64) instead
  --size-only          compare sizes only
  --delete             delete DST entries missing from SRC (after the transfers;
                       never when a transfer failed or the source is missing/empty)
  --max-delete N       more deletes than N: delete nothing, exit 3
  --force              allow --delete with a missing or empty source
  --backup PREFIX|DIR  move instead of delete
  --delete-excluded    delete excluded DST entries too
  --include GLOB, --exclude GLOB   ordered, first match wins (repeatable)
  --dry-run            print the plan (each action with its reason), send no write
  --no-state           no sync-state file (default: DIR/.objstore-sync-<id>)
  --state-file PATH    the sync-state file elsewhere
  --modify-window S    mtime slack in seconds
  --bwlimit SIZE       bytes per second (e.g. 10M)
  --follow-symlinks    follow symbolic links (loops are detected)
  --content-type TYPE  instead of the type guessed from the extension
]==]

_M.check = [==[
Usage: objstore check SRC DST [--checksum] [--include GLOB] [--exclude GLOB]
  Lists what differs, what is missing on DST and what DST has in addition;
  exit 0 when they match, 1 otherwise. Nothing is written.
]==]

_M.cat = [==[
Usage: objstore cat s3://BUCKET/KEY
  Streams the object to stdout.
]==]

_M.stat = [==[
Usage: objstore stat s3://BUCKET/KEY
  Size, ETag, Last-Modified, Content-Type, storage class and user metadata.
]==]

_M.mb = [==[
Usage: objstore mb s3://BUCKET
]==]

_M.rb = [==[
Usage: objstore rb s3://BUCKET [--force]
  --force deletes every object (and incomplete upload) first.
]==]

_M.presign = [==[
Usage: objstore presign s3://BUCKET/KEY [--expires SECONDS] [--method GET|PUT]
]==]

_M.du = [==[
Usage: objstore du s3://BUCKET[/PREFIX]
  Total bytes and object count under PREFIX.
]==]

return _M
