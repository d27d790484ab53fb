"""Cloud providers behind one interface (base.Provider): EC2 through boto3,
DigitalOcean, Linode and Vultr through their documented REST APIs, and the
lab. Each call is a provider's own; what the create-server flow and
hibernation need of them is in base.py."""
