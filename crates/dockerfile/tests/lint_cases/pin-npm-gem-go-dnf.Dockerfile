FROM fedora:41
RUN dnf install -y golang-1.23.4 rubygems npm && dnf clean all
RUN npm install -g typescript@5.6.3 eslint
RUN gem install rails && gem install rake:13.2.1
RUN go install golang.org/x/tools/gopls@v0.16.2 && go install example.com/tool
USER app
