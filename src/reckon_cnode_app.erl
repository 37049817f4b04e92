%%% @doc OTP application callback of `reckon_cnode'.
%%%
%%% Starts {@link reckon_cnode_sup}. On stop it removes the configuration
%%% that the shim's connection watcher ({@link reckon_cnode_conn}) published
%%% in `persistent_term', so that
%%% {@link reckon_cnode_emitter_group} reports `reckon_cnode_not_started'
%%% instead of calling a C node nobody looks after any more.
%%% @end
-module(reckon_cnode_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Starts the top supervisor.
-spec start(application:start_type(), term()) ->
          {ok, pid()} | {error, term()}.
start(_StartType, _StartArgs) ->
    case reckon_cnode_sup:start_link() of
        {ok, Pid} -> {ok, Pid};
        ignore -> {error, ignore};
        {error, Reason} -> {error, Reason}
    end.

%% @doc Called after the supervision tree has stopped: unpublishes the
%% C node's name.
-spec stop(term()) -> ok.
stop(_State) ->
    reckon_cnode:unpublish().
