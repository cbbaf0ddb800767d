# What a LookupEvents costs on the Lazy (SQLite) trail: N Encrypts through
# boto3 (8 threads), then three lookups; the first stores the N events.
# Usage: keyfort serve --listen 127.0.0.1:18222 --data /tmp/kfl &
#        python3 bench/lookup_cost.py 20000
import boto3, time, threading, sys
ep="http://127.0.0.1:18222"
mk=lambda s: boto3.client(s, endpoint_url=ep, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
kms=mk("kms"); kid=kms.create_key()["KeyMetadata"]["KeyId"]
N=int(sys.argv[1]); T=8
def work():
    c=mk("kms")
    for i in range(N//T): c.encrypt(KeyId=kid, Plaintext=b"x")
t0=time.time(); ts=[threading.Thread(target=work) for _ in range(T)]; [t.start() for t in ts]; [t.join() for t in ts]
print("encrypts", N, "in %.1fs" % (time.time()-t0))
ct=mk("cloudtrail")
for i in range(3):
    t0=time.time(); r=ct.lookup_events(MaxResults=50, LookupAttributes=[{"AttributeKey":"EventName","AttributeValue":"CreateKey"}])
    print("lookup %d: %.3fs, %d events" % (i, time.time()-t0, len(r["Events"])))
