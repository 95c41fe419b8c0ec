"""Exploration behind issue 17's calibration choice (not a product path), on the logits that
bench/calibration-probe.mjs writes: test accuracy and the first 100/250/1000 of the margin order (fraction whose
proposal is the reference; in brackets with no-reference rows left out) for the head's own probabilities,
temperature scaling, vector scaling, per-class bias, the logit gap, a mean of seeds, and other ranking keys.
usage: python3 bench/calibration-probe.py OUT.json [--keys]
Needs numpy and scipy (side analysis only; never in tests or CI).
"""
import json, numpy as np, sys
from scipy.optimize import minimize
def load(p):
    d=json.load(open(p)); C=d['C']; sp=np.array(d['splits']); g=np.array(d['given']); ref=np.array(d['reference'])
    L={int(k):np.array(v,dtype=np.float64).reshape(-1,C) for k,v in d['logits'].items()}
    return C,sp,g,ref,L
def softmax(z):
    z=z-z.max(1,keepdims=True); e=np.exp(z); return e/e.sum(1,keepdims=True)
def fitT(z,y):
    f=lambda lt: -np.log(softmax(z/np.exp(lt))[np.arange(len(y)),y]+1e-300).mean()
    r=minimize(lambda v:f(v[0]),[0.0]); return float(np.exp(r.x[0]))
def fitVec(z,y,C,bias_only=False):
    def f(v):
        w=np.ones(C) if bias_only else v[:C]; b=v[-C:]
        p=softmax(z*w+b); return -np.log(p[np.arange(len(y)),y]+1e-300).mean()
    x0=np.concatenate([np.zeros(C) if bias_only else np.ones(C)*0.5, np.zeros(C)]) if not bias_only else np.zeros(C)
    r=minimize(f,x0,method='L-BFGS-B'); v=r.x
    return (np.ones(C) if bias_only else v[:C]), v[-C:]
def order_right(P, g, ref, tr, delta2=0.2, props=None, key=None, ks=(100,250,1000)):
    n=len(g); idx=np.arange(n)
    pmax=P.max(1); am=P.argmax(1); pg=P[idx,g]
    if props is None: props=tr & (am!=g) & (pmax-pg>delta2)
    cand=np.where(props)[0]; prop=am[cand]; m=(P[cand,prop]-pg[cand]) if key is None else key[cand]
    o=np.lexsort((cand,-m)); c=cand[o]; pr=prop[o]
    out=[]
    for k in ks:
        r=(pr[:k]==ref[c[:k]]); has=ref[c[:k]]>=0
        out.append((round(r.mean(),3), round(r[has].mean(),3)))
    return len(cand), out, props
if __name__=='__main__' and '--keys' not in sys.argv:
    C,sp,g,ref,L=load(sys.argv[1]); tr=sp=='train'; va=sp=='valid'; te=sp=='test'
    seeds=sorted(L)
    for s in seeds:
        z=L[s]; P=softmax(z)
        acc=((P.argmax(1)==ref)[te&(ref>=0)]).mean()
        n,o,props=order_right(P,g,ref,tr)
        T=fitT(z[va],g[va]); PT=softmax(z/T)
        w,b=fitVec(z[va],g[va],C); PV=softmax(z*w+b)
        _,bb=fitVec(z[va],g[va],C,True); PB=softmax(z+bb)
        print(f'seed {s} test acc {acc:.4f} props {n} raw {o}')
        print('  T=%.2f same props'%T, order_right(PT,g,ref,tr,props=props)[1], 'own props', order_right(PT,g,ref,tr)[:2])
        am=P.argmax(1); idx=np.arange(len(g))
        print('  logit gap', order_right(P,g,ref,tr,props=props,key=z[idx,am]-z[idx,g])[1])
        print('  vec same', order_right(PV,g,ref,tr,props=props)[1], 'own', order_right(PV,g,ref,tr)[:2], 'testacc %.4f'%((PV.argmax(1)==ref)[te&(ref>=0)]).mean())
        print('  bias same', order_right(PB,g,ref,tr,props=props)[1], 'testacc %.4f'%((PB.argmax(1)==ref)[te&(ref>=0)]).mean())
        print('  NLL valid raw %.3f T %.3f vec %.3f'%tuple(-np.log(Q[va][np.arange(va.sum()),g[va]]+1e-300).mean() for Q in (P,PT,PV)))
    # ensemble of seeds: mean of T-calibrated probs
    Ps=[]; 
    for s in seeds:
        z=L[s]; T=fitT(z[va],g[va]); Ps.append(softmax(z/T))
    PE=np.mean(Ps,0)
    print('ensemble(T) testacc %.4f'%((PE.argmax(1)==ref)[te&(ref>=0)]).mean(), order_right(PE,g,ref,tr)[:2])
    n,o,props1=order_right(softmax(L[seeds[0]]),g,ref,tr)
    print('ensemble same props as seed1', order_right(PE,g,ref,tr,props=props1)[1])

def keys(path):
    C,sp,g,ref,L=load(path); tr=sp=='train'; va=sp=='valid'; idx=np.arange(len(g))
    for s in sorted(L):
        z=L[s]; P=softmax(z); n,o,props=order_right(P,g,ref,tr)
        T=fitT(z[va],g[va]); PT=softmax(z/T); am=P.argmax(1)
        res={'margT':order_right(PT,g,ref,tr,props=props)[1],
             'pprop':order_right(PT,g,ref,tr,props=props,key=PT[idx,am])[1],
             '-pgiv':order_right(PT,g,ref,tr,props=props,key=-PT[idx,g])[1],
             'logratio':order_right(PT,g,ref,tr,props=props,key=np.log(PT[idx,am])-np.log(PT[idx,g]))[1]}
        for T2 in (1.5,2,5,8):
            res[f'T{T2}']=order_right(softmax(z/T2),g,ref,tr,props=props)[1]
        print(s,{k:[a for a,b in v] for k,v in res.items()})

if __name__=='__main__' and '--keys' in sys.argv:
    keys(sys.argv[1])
