#!/usr/bin/env python3
"""Whether a pre-written trail file would make the gateway's fsync cheaper.

Appends 2,800 bytes (about one group commit of 4.6 records at saturation) and fdatasyncs,
3,000 times, to a file that grows (as the trail does) and to a file whose blocks were written
beforehand (as a pre-zeroed WAL segment is), and prints the process CPU and the wall time per
fdatasync. Run it in the directory the trail would be in (ext4 here): python3 fsync-prealloc.py
"""
import os, time, resource
N=3000
rec=b'x'*2800  # ~4.6 records of 620 bytes
def run(prealloc):
    p='fsync-prealloc.bin'
    if os.path.exists(p): os.remove(p)
    fd=os.open(p, os.O_RDWR|os.O_CREAT)
    if prealloc:
        os.write(fd, b'\0'*(N*len(rec)+4096)); os.fsync(fd); os.lseek(fd,0,0)
    r0=resource.getrusage(resource.RUSAGE_SELF); t0=time.time()
    for i in range(N):
        os.write(fd, rec); os.fdatasync(fd)
    r1=resource.getrusage(resource.RUSAGE_SELF); t1=time.time()
    cpu=(r1.ru_utime+r1.ru_stime-r0.ru_utime-r0.ru_stime)/N*1e6
    print('prealloc' if prealloc else 'append', 'cpu us/sync %.1f wall us/sync %.1f'%(cpu,(t1-t0)/N*1e6))
    os.close(fd)
    os.remove(p)
for _ in range(2):
    run(False); run(True)
