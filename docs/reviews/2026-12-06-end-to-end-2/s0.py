from pop import *
for prof in ['maildir','maildir-fs','sdbox','mdbox']:
    n='s'+prof.replace('-','')
    adduser(n, prof)
    made = populate(n, folders=[f for f in FOLDERS if not (prof=='maildir' and f.startswith('.'))])
    print(n, len(made))
